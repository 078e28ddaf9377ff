"""The Ray executor on a local cluster: the local executor's rows, global limits, a killed actor, one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmbridge import Request, Response
from mmbridge.config import CacheConfig, Config, ProviderConfig
from mmbridge.distributed import RayOptions, ray_batch
from mmbridge.distributed.batch import WorkerError
from mmbridge.errors import ProviderNotInstalledError
from mmbridge.eval.evaluate import evaluate
from mmbridge.eval.rows import TIMING

pytestmark = pytest.mark.slow  # a Ray cluster starts once per session (seconds), and actors per run
DATASET = "builtin:shapes?split=test&images=40"  # 32 samples


#: a provider's summary figures that measure speed: they differ between two runs of the same thing
PROVIDER_TIMING = ("latency_s", "service_s", "answers_per_s")


def _rows(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows = {}
    for line in (out / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        for name in (*TIMING, "cached"):
            row.pop(name)
        rows[row["sample_id"], row["provider"]] = row
    return rows


def test_rows_equal_the_local_executors_and_the_driver_answers_cache_hits(ray_cluster, tmp_path: Path) -> None:
    config = Config(
        cache=CacheConfig(dir=tmp_path / "cache"),
        providers={"blind": ProviderConfig(type="prior"), "captionless": ProviderConfig(type="fake", tasks=["vqa"])},
    )
    names = ["fake", "blind", "captionless"]
    local = asyncio.run(
        evaluate(
            names,
            DATASET,
            tmp_path / "local",
            config=config.model_copy(update={"cache": CacheConfig(enabled=False)}),
            progress=False,
        )
    )
    on_ray = asyncio.run(
        evaluate(names, DATASET, tmp_path / "ray", config=config, progress=False, executor=RayOptions(actors=2))
    )
    local, on_ray = (s.model_dump(mode="json", by_alias=True) for s in (local, on_ray))
    assert _rows(tmp_path / "local") == _rows(tmp_path / "ray") and len(_rows(tmp_path / "ray")) == 96
    assert on_ray["providers"] == local["providers"] | {
        name: {**local["providers"][name], **{k: on_ray["providers"][name][k] for k in PROVIDER_TIMING}}
        for name in names
    }
    assert any(row["unsupported"] for row in _rows(tmp_path / "ray").values())  # captionless on captions
    asyncio.run(evaluate(names, DATASET, tmp_path / "again", config=config, progress=False, executor=RayOptions()))
    again = [json.loads(line) for line in (tmp_path / "again" / "samples.jsonl").read_text().splitlines()]
    assert all(row["cached"] for row in again if not row["unsupported"])  # no block went to the cluster


def test_ray_batch_returns_answers_in_order_and_a_failure_in_its_place(ray_cluster, shapes_png: Path) -> None:
    config = Config(
        cache=CacheConfig(enabled=False), providers={"vqa-only": ProviderConfig(type="fake", tasks=["vqa"])}
    )
    requests = [Request.vqa(shapes_png, f"question {i}?") for i in range(6)]
    requests.insert(3, Request.caption(shapes_png))
    results = ray_batch(requests, "vqa-only", config=config, options=RayOptions(actors=2, block_rows=2))
    assert [type(r) for r in results] == [Response] * 3 + [WorkerError] + [Response] * 3
    assert results[3].type == "UnsupportedTaskError"
    direct = [r.text for r in ray_batch(requests[:3], "vqa-only", config=config)]
    assert [r.text for r in results[:3]] == direct


@pytest.fixture
def server_process() -> Iterator[str]:
    """The test server in a process of its own, its URL: its arrival stamps do not wait on this
    process's interpreter lock, so a bunch they show is the limiter's, not the measurement's."""
    command = [sys.executable, "-m", "mmbridge.testing.openai_server", "--max-seconds", "120"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            yield server.stdout.readline().strip()
        finally:
            server.terminate()


def test_the_rate_limit_holds_across_four_actors(ray_cluster, server_process: str, tmp_path: Path) -> None:
    entry = ProviderConfig(type="openai", base_url=server_process, requests_per_minute=600)
    config = Config(cache=CacheConfig(enabled=False), providers={"gpt": entry})
    dataset = "builtin:shapes?split=test&images=50"  # 40 samples: 4 s at 10 a second
    asyncio.run(
        evaluate(
            ["gpt"],
            dataset,
            tmp_path / "out",
            config=config,
            progress=False,
            executor=RayOptions(actors=4, actor_cpus=0.25, block_rows=4),
        )
    )
    with urllib.request.urlopen(server_process + "/stats", timeout=10) as stats:
        times = sorted(json.load(stats)["arrivals"])
    assert len(times) == 40
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 10, f"{busiest} requests reached the server within one second"


def test_an_actor_killed_mid_run_loses_no_row_and_repeats_none(ray_cluster) -> None:
    from mmbridge.distributed.executor import Pictures, answer_on_ray, work_row

    config = Config(cache=CacheConfig(enabled=False), providers={"slow": ProviderConfig(type="fake", delay_s=0.05)})
    image = (Path(__file__).resolve().parents[2] / "examples" / "shapes.png").read_bytes()
    options = RayOptions(actors=2, block_rows=4)
    pictures = Pictures(options)
    work = [work_row(i, "slow", Request.vqa(image, f"q{i}?"), pictures.add(image)) for i in range(48)]
    assert len(pictures.refs) == 1  # one picture in the object store for 48 rows
    seen: list[int] = []
    killed = None
    for result in answer_on_ray(config, ["slow"], work, pictures, options, {"slow": 1}):
        seen.append(result["i"])
        if killed is None:  # the actor that sent the first block is busy with its next one: kill it
            killed = result["pid"]
            os.kill(killed, signal.SIGKILL)
    assert sorted(seen) == list(range(48))  # each row exactly once
    assert killed is not None


def test_without_ray_or_with_an_unreachable_address_it_is_one_line(
    ray_cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mmbridge.distributed.cluster import connect

    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "ray", None)
        with pytest.raises(ProviderNotInstalledError, match=r"pip install 'mmbridge\[ray\]'"):
            connect(RayOptions())
    command = [sys.executable, "-m", "mmbridge.cli.main", "eval", "-p", "fake", "--dataset", DATASET]
    command += ["--out", str(tmp_path / "o"), "--executor", "ray", "--ray-address", "127.0.0.1:9"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "cannot reach Ray at 127.0.0.1:9" in done.stderr


def test_the_example_answers_in_order(ray_cluster, capsys: pytest.CaptureFixture[str]) -> None:
    import runpy

    example = runpy.run_path(str(Path(__file__).resolve().parents[2] / "examples" / "ray_batch.py"))
    results = example["main"]()
    assert len(results) == 3 and all(isinstance(r, Response) for r in results)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" -> ")[0] for line in lines[-3:]] == [
        "What color is the circle?",
        "How many objects are there?",
        "What shape is the red object?",
    ]


def test_a_rerun_on_ray_asks_only_for_the_rows_it_lacks(ray_cluster, openai_server, tmp_path: Path) -> None:
    config = Config(
        cache=CacheConfig(enabled=False),
        providers={"gpt": ProviderConfig(type="openai", base_url=openai_server.url)},
    )
    out = tmp_path / "out"
    options = RayOptions(actors=2, block_rows=8)
    asyncio.run(evaluate(["gpt"], DATASET, out, config=config, progress=False, executor=options))
    assert len(openai_server.requests) == 32
    rows = (out / "samples.jsonl").read_text().splitlines()
    (out / "samples.jsonl").write_text("\n".join(rows[:12]) + "\n")  # as if killed after 12 rows
    asyncio.run(evaluate(["gpt"], DATASET, out, config=config, progress=False, executor=options))
    assert len(openai_server.requests) == 32 + 20
    assert _rows(out).keys() == {(json.loads(r)["sample_id"], "gpt") for r in rows}


def test_the_three_routes_write_the_same_rows(ray_cluster, openai_server, tmp_path: Path) -> None:
    """This process, the Batch API and Ray answer through one dispatch: the same answers, scores and
    row identities (latency, the cache flag and batch prices aside)."""
    config = Config(
        cache=CacheConfig(enabled=False),
        providers={"gpt": ProviderConfig(type="openai", base_url=openai_server.url, batch_poll_s=0.05)},
    )
    routes = {
        "local": {},
        "batch": {"batch": True},
        "ray": {"executor": RayOptions(actors=2, block_rows=8)},
    }
    seen = {}
    for route, options in routes.items():
        asyncio.run(evaluate(["gpt"], DATASET, tmp_path / route, config=config, progress=False, **options))
        seen[route] = {
            key: {k: v for k, v in row.items() if k != "cost_usd"} for key, row in _rows(tmp_path / route).items()
        }
    assert len(seen["local"]) == 32 and seen["local"] == seen["batch"] == seen["ray"]
