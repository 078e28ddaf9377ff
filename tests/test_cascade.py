"""Cascade: the cheap provider answers when it is sure, the next one when it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbridge import Client, ConfigError, ProviderError, Request, Response
from mmbridge.types import Task, Usage
from mmbridge.wrappers import Cached, Cascade


def _cheap(calls: list[str]):
    def answer(request: Request) -> Response:
        calls.append(request.question or request.statement or "")
        if "broken" in (request.question or ""):
            raise ProviderError("local model out of memory")
        sure = 0.95 if "easy" in (request.question or request.statement or "") else 0.4
        task = request.task
        return Response(
            task=task,
            text="red",
            answer="red" if task is Task.VQA else None,
            label=True if task is Task.VERIFY else None,
            provider="cheap",
            confidence=sure,
            usage=Usage(cost_usd=0.0),
        )

    return Client("function", fn=answer, model="cheap").provider


def _strong(calls: list[str]):
    def answer(request: Request) -> Response:
        calls.append(request.question or request.statement or "")
        return Response(
            task=request.task,
            text="blue",
            answer="blue",
            label=False,
            provider="strong",
            usage=Usage(input_tokens=100, output_tokens=2, cost_usd=0.001),
        )

    return Client("function", fn=answer, model="strong").provider


def test_sure_answers_stay_local_and_the_rest_escalate_with_usage_added(shapes_png: Path) -> None:
    cheap_calls: list[str] = []
    strong_calls: list[str] = []
    cascade = Cascade([_cheap(cheap_calls), _strong(strong_calls)], thresholds={"vqa": 0.9})
    with Client(cascade) as client:
        easy = client.ask(shapes_png, "easy: what colour?")
        assert (easy.answer, easy.escalated_from, easy.usage.cost_usd) == ("red", (), 0.0)
        assert strong_calls == []
        hard = client.ask(shapes_png, "hard: what colour?")
        assert hard.answer == "blue" and hard.escalated_from == ("function",)
        assert hard.usage == Usage(input_tokens=100, output_tokens=2, cost_usd=0.001)  # both calls
        failed = client.ask(shapes_png, "broken: what colour?")  # a failing stage escalates
        assert failed.answer == "blue" and failed.escalated_from == ("function",)
        # verify has no threshold: it is never answered early, however sure the first stage is
        assert client.verify(shapes_png, "easy: it is red").label is False
    assert strong_calls == ["hard: what colour?", "broken: what colour?", "easy: it is red"]


def test_the_last_stage_failing_is_the_error(shapes_png: Path) -> None:
    def down(request: Request) -> str:
        raise ProviderError("api down")

    cascade = Cascade([_cheap([]), Client("function", fn=down).provider], thresholds={"vqa": 0.9})
    with Client(cascade) as client, pytest.raises(ProviderError, match="api down"):
        client.ask(shapes_png, "hard: what colour?")


def test_a_config_cascade_caches_each_stage(tmp_path: Path, shapes_png: Path) -> None:
    config = tmp_path / "mmbridge.toml"
    config.write_text(
        'default = "team"\n'
        '[providers.small]\ntype = "fake"\nseed = 1\n'
        '[providers.big]\ntype = "fake"\nseed = 2\n'
        '[providers.team]\ntype = "cascade"\nproviders = ["small", "big"]\nthresholds = {vqa = 0.9}\n'
    )
    with Client.from_config(config) as client:
        cascade = client.provider.inner
        assert isinstance(cascade, Cascade) and all(isinstance(s, Cached) for s in cascade.providers)
        first = client.ask(shapes_png, "What colour?")  # fake reports no confidence: it escalates
        assert first.escalated_from == ("small",) and not first.cached
        again = client.ask(shapes_png, "What colour?")
        assert again.cached and again.text == first.text  # each stage answered from its cache


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('providers = ["small"]\nthresholds = {vqa = 0.9}', "needs providers"),
        ('providers = ["small", "big"]\nthresholds = {vqa = 1.5}', "thresholds.vqa must be a number within 0..1"),
        ('providers = ["small", "big"]\nthresholds = {vga = 0.9}', "thresholds.vga: not a task"),
        ('providers = ["small", "big"]\nthreshold = 0.9', "providers and thresholds only"),
    ],
)
def test_a_bad_cascade_table_is_one_config_error(table: str, words: str, tmp_path: Path) -> None:
    config = tmp_path / "mmbridge.toml"
    config.write_text(
        '[providers.small]\ntype = "fake"\n[providers.big]\ntype = "fake"\n'
        f'[providers.team]\ntype = "cascade"\n{table}\n'
    )
    with pytest.raises(ConfigError, match=words) as info:
        Client.from_config(config, "team")
    assert "\n" not in str(info.value)
