"""The evaluation runner: same samples for all, errors and unsupported tasks counted apart, resume after a kill."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmbridge.config import load_config
from mmbridge.errors import RunError
from mmbridge.eval.evaluate import evaluate
from mmbridge.eval.runner import read_rows
from mmbridge.eval.summary import SCHEMA
from mmbridge.eval.summary_model import read_summary

DATASET = "builtin:shapes?split=train&images=40&seed=3"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mmbridge.toml"
    path.write_text(
        "[retry]\nmax_attempts = 1\n"
        '[providers.flaky]\ntype = "fake"\nerror_rate = 0.3\n'
        '[providers.vqa_only]\ntype = "fake"\nseed = 1\ntasks = ["vqa"]\n'
        f'[providers.prior]\ntype = "prior"\ntrain = "{DATASET}"\n'
    )
    return path


def test_errors_and_unsupported_tasks_are_counted_apart(tmp_path: Path, config: Path) -> None:
    summary = asyncio.run(
        evaluate(
            ["flaky", "vqa_only", "prior"],
            DATASET,
            tmp_path / "out",
            limit=20,
            config=load_config(config),
            progress=False,
        )
    )
    rows = read_rows(tmp_path / "out" / "samples.jsonl")
    assert len(rows) == len({(r.sample_id, r.provider) for r in rows}) == 3 * 60
    summary = summary.model_dump(mode="json", by_alias=True)
    flaky = summary["providers"]["flaky"]["tasks"]["vqa"]
    errored = [r for r in rows if r.provider == "flaky" and r.task == "vqa" and r.error]
    assert flaky["errors"] == len(errored) > 0 and flaky["answered"] == 20 - len(errored)
    assert flaky["error_rate"] == pytest.approx(len(errored) / 20)
    assert all(r.score is None and r.error.type == "ProviderError" for r in errored)  # never scored
    only = summary["providers"]["vqa_only"]["tasks"]
    assert only["caption"]["unsupported"] and only["caption"]["metrics"] == {} and only["caption"]["errors"] == 0
    assert not only["vqa"]["unsupported"] and "vqa_accuracy" in only["vqa"]["metrics"]
    pairs = {(p["a"], p["b"], p["task"]) for p in summary["pairs"]}
    assert ("flaky", "vqa_only", "vqa") in pairs and ("flaky", "vqa_only", "caption") not in pairs


def test_summary_follows_the_documented_schema(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "out"
    asyncio.run(evaluate(["fake", "prior"], DATASET, out, limit=15, seed=5, config=load_config(config), progress=False))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == SCHEMA and summary["seed"] == 5
    tasks = summary["providers"]["prior"]["tasks"]
    assert set(tasks) == {"vqa", "caption", "verify"}
    caption = tasks["caption"]["metrics"]
    assert set(caption) == {"bleu1", "bleu2", "bleu3", "bleu4", "cider", "rouge_l", "chair_i", "chair_s"}
    for metric in [*caption.values(), tasks["vqa"]["metrics"]["vqa_accuracy"], tasks["verify"]["metrics"]["accuracy"]]:
        low, high = metric["ci95"]
        assert low <= metric["value"] <= high
    assert set(tasks["vqa"]["by_type"]) <= {"attribute", "position", "count", "exist", "relational"}
    pair = summary["pairs"][0]
    assert set(pair) == {"a", "b", "task", "metric", "n", "diff", "ci95", "p_value", "test"}
    assert 0 < pair["p_value"] <= 1
    provider = summary["providers"]["fake"]
    assert provider["latency_s"]["p50"] is not None and provider["cost_usd"] == 0.0
    typed = read_summary(out / "summary.json")  # read back through the model it was written from
    assert typed.providers["prior"].tasks["vqa"].answered == tasks["vqa"]["answered"] and typed.seed == 5
    earlier = {**summary, "schema": "mmbridge.eval.summary/1"}  # /1 lacked these two unless evaluate() added them
    del earlier["reasked_errors"]
    for entry in earlier["providers"].values():
        del entry["batch"]
    (out / "v1.json").write_text(json.dumps(earlier))
    assert read_summary(out / "v1.json").model_dump() == typed.model_dump()
    (out / "v9.json").write_text(json.dumps({**summary, "schema": "mmbridge.eval.summary/9"}))
    with pytest.raises(RunError, match="schema 'mmbridge.eval.summary/9'"):
        read_summary(out / "v9.json")
    html = (out / "report.html").read_text()
    assert "<svg" in html and "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert "## Pairs" in (out / "report.md").read_text()


def test_rerun_asks_nothing_again(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "out"
    loaded = load_config(config)
    asyncio.run(evaluate(["fake"], DATASET, out, limit=5, config=loaded, progress=False))
    first = (out / "samples.jsonl").read_bytes()
    asyncio.run(evaluate(["fake"], DATASET, out, limit=5, config=loaded, progress=False))
    assert (out / "samples.jsonl").read_bytes() == first


def test_a_killed_run_resumes_without_asking_again(tmp_path: Path, openai_server) -> None:
    pytest.importorskip("mmbridge_openai")
    openai_server.latency_s = 0.05
    config = tmp_path / "mmbridge.toml"
    config.write_text(
        f'[cache]\nenabled = false\n[providers.remote]\ntype = "openai"\nbase_url = "{openai_server.url}"\n'
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mmbridge.cli.main",
        "eval",
        "-p",
        "remote",
        "--dataset",
        DATASET,
        "--out",
        str(out),
        "--limit",
        "10",
        "--concurrency",
        "2",
        "--config",
        str(config),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MMBRIDGE_"))}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    rows_file = out / "samples.jsonl"
    while time.monotonic() < deadline and (not rows_file.exists() or rows_file.read_text().count("\n") < 8):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    before = len(read_rows(rows_file))
    assert 8 <= before < 30, "killed mid-run"
    asked_before = len(openai_server.requests)
    finished = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    rows = read_rows(rows_file)
    assert len(rows) == 30 and len({r.sample_id for r in rows}) == 30  # no duplicate rows
    # every sample was asked once, except the (at most 2) in flight when the first run was killed
    assert len(openai_server.requests) - asked_before == 30 - before
    assert len(openai_server.requests) <= 30 + 2
