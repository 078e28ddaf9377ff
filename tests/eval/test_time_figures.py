"""Each provider's service time, latency and answers per second, named apart in the summary and reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mmbridge.eval.evaluate import evaluate
from mmbridge.eval.rows import Row
from mmbridge.eval.summary import PAUSE_S, answers_per_second
from mmbridge.eval.summary_model import read_summary


def row(i: int, at: float, latency: float = 0.5) -> Row:
    return Row(sample_id=str(i), provider="p", task="vqa", latency_s=latency, answered_at=at)


def test_answers_per_second_counts_the_time_they_were_made_and_not_the_pauses() -> None:
    steady = [row(i, 1000 + i * 0.1) for i in range(10)]  # 10 answers from 999.5 (first call) to 1000.9
    assert answers_per_second(steady) == pytest.approx(10 / 1.4, abs=1e-3)
    resumed = steady + [row(100 + i, 1000.9 + PAUSE_S + 3600 + i * 0.1) for i in range(10)]
    assert answers_per_second(resumed) == pytest.approx(20 / 2.8, abs=1e-3)  # an hour's pause left out
    assert answers_per_second(steady[:1]) is None


def test_the_summary_and_reports_hold_service_time_apart_from_latency(tmp_path: Path) -> None:
    summary = asyncio.run(evaluate(["fake"], "builtin:shapes?split=val&images=20", tmp_path / "run", progress=False))
    fake = summary.providers["fake"]
    assert fake.service_s.p50 is not None and fake.service_s.p50 <= fake.latency_s.p95
    assert fake.answers_per_s and fake.answers_per_s > 0
    rows = [Row.model_validate_json(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert all(r.service_s is not None and r.service_s <= r.latency_s and r.answered_at for r in rows)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| provider | service p50 | service p95 | latency p50 | latency p95 | answers/s |" in report
    assert read_summary(tmp_path / "run" / "summary.json").providers["fake"].service_s == fake.service_s
    again = asyncio.run(evaluate(["fake"], "builtin:shapes?split=val&images=20", tmp_path / "run", progress=False))
    assert again.providers["fake"].service_s == fake.service_s  # a rerun asks nothing again: the same figures
