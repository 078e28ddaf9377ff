"""The hf provider where the others work: an evaluation, a cascade's cheap member, `serve` through the
official SDK, a Ray actor, and `mmbridge providers`."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmbridge import Client
from mmbridge.config import CacheConfig, Config, ProviderConfig

DATASET = "builtin:shapes?split=val&images=12"


def config_with(tiny_vlm: Path, **more: ProviderConfig) -> Config:
    return Config(
        cache=CacheConfig(enabled=False),
        providers={"vlm": ProviderConfig(type="hf", model=str(tiny_vlm), batch_size=16), **more},
    )


def test_an_evaluation_scores_it_beside_another_provider(tiny_vlm: Path, tmp_path: Path) -> None:
    from mmbridge.eval.evaluate import evaluate

    config = config_with(tiny_vlm, fake=ProviderConfig(type="fake"))
    summary = asyncio.run(evaluate(["vlm", "fake"], DATASET, tmp_path / "run", config=config, progress=False))
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    mine = [r for r in rows if r["provider"] == "vlm"]
    assert len(mine) == summary.samples and not any(r["error"] for r in mine)
    assert all(r["confidence"] is not None for r in mine if r["task"] != "caption")
    assert summary.providers["vlm"].cost_usd == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["providers"]["vlm"]["revision"].startswith("local-")


def test_as_a_cascades_first_member_it_escalates_when_unsure(tiny_vlm: Path, shapes_png: Path) -> None:
    def cascade(threshold: float) -> Client:
        cascade = ProviderConfig(type="cascade", providers=["vlm", "fake"], thresholds={"vqa": threshold})
        return Client("both", config=config_with(tiny_vlm, fake=ProviderConfig(type="fake"), both=cascade))

    choices = ["red", "green", "blue", "orange"]  # a random model: well below 0.99 sure of any
    with cascade(0.99) as unsure, cascade(0.01) as sure:
        escalated = unsure.ask(shapes_png, "What color is the circle?", choices=choices)
        kept = sure.ask(shapes_png, "What color is the circle?", choices=choices)
    assert escalated.provider == "fake" and escalated.escalated_from == ("vlm",)
    assert kept.provider == "vlm" and kept.escalated_from == ()


def test_serve_answers_with_it_through_the_official_sdk(tiny_vlm: Path, shapes_png: Path) -> None:
    openai = pytest.importorskip("openai")
    from mmbridge.serve.run import running_server

    with Client("vlm", config=config_with(tiny_vlm)) as client, running_server(client, "vlm", max_seconds=60) as url:
        sdk = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        picture = "data:image/png;base64," + base64.b64encode(shapes_png.read_bytes()).decode()
        reply = sdk.chat.completions.create(
            model="vlm",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What color is the circle?"},
                        {"type": "image_url", "image_url": {"url": picture}},
                    ],
                }
            ],
        )
        direct = client.ask(shapes_png, "What color is the circle?")
    assert reply.choices[0].message.content in (direct.text, direct.answer)  # serve sends the answer it read
    assert reply.usage.prompt_tokens == direct.usage.input_tokens


@pytest.mark.slow
def test_a_ray_actor_answers_with_it(ray_cluster, tiny_vlm: Path, shapes_png: Path) -> None:
    from mmbridge import Request, Response
    from mmbridge.distributed import RayOptions, ray_batch

    requests = [Request.vqa(shapes_png, f"What color is object {i}?", choices=["red", "blue"]) for i in range(6)]
    config = config_with(tiny_vlm)
    results = ray_batch(requests, "vlm", config=config, options=RayOptions(actors=1, block_rows=2))
    assert all(isinstance(r, Response) for r in results)
    with Client("vlm", config=config) as here:
        assert [r.answer for r in results] == [
            here.ask(shapes_png, r.question, choices=["red", "blue"]).answer for r in requests
        ]


def test_providers_lists_it_as_ready() -> None:
    done = subprocess.run([sys.executable, "-m", "mmbridge.cli.main", "providers"], capture_output=True, text=True)
    cells = next(
        cells for line in done.stdout.splitlines() if (cells := line.strip("│ ").split("│"))[0].strip() == "hf"
    )
    assert [c.strip() for c in cells[1:3]] == ["mmbridge-hf", "ready"]
