"""`mmbridge eval --batch`: the OpenAI Batch API against the loopback server, driven by the official SDK."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openai")

from mmbridge import RunError  # noqa: E402
from mmbridge.config import load_config  # noqa: E402
from mmbridge.eval.evaluate import evaluate  # noqa: E402
from mmbridge.eval.runner import read_rows  # noqa: E402
from mmbridge.testing import OpenAICompatibleServer  # noqa: E402
from mmbridge.testing.batch_api import BatchFault, BatchTiming  # noqa: E402

DATASET = "builtin:shapes?split=test&images=30"  # 3 test pictures, 24 samples: 15 vqa, 6 verify, 3 caption
KEY = "sk-test-batch-secret-1234"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BATCH_TEST_KEY", KEY)
    with OpenAICompatibleServer(api_key=KEY, max_seconds=120) as running:
        yield running


def _config_file(tmp_path: Path, server: OpenAICompatibleServer, **options: Any) -> Path:
    settings = {"batch": True, "batch_poll_s": 0.05, **options}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    path = tmp_path / "mmbridge.toml"
    path.write_text(
        f'[cache]\ndir = "{tmp_path / "cache"}"\n[retry]\ninitial_wait_s = 0.01\n'
        f'[providers.gpt]\ntype = "openai"\nbase_url = "{server.url}"\napi_key_env = "BATCH_TEST_KEY"\n{lines}'
    )
    return path


def _eval(tmp_path: Path, server: OpenAICompatibleServer, out: str = "out", **kwargs: Any) -> dict:
    options = kwargs.pop("options", {})
    config = load_config(_config_file(tmp_path, server, **options))
    summary = asyncio.run(evaluate(["gpt"], DATASET, tmp_path / out, config=config, progress=False, **kwargs))
    return summary.model_dump(mode="json", by_alias=True)


def _rows(tmp_path: Path, out: str = "out") -> list:
    return read_rows(tmp_path / out / "samples.jsonl")


def _chats(server: OpenAICompatibleServer) -> list:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def _batch_lines(server: OpenAICompatibleServer) -> list[dict]:
    lines = []
    for _, purpose, content in server.batches.files.values():
        if purpose == "batch":
            lines += [json.loads(line) for line in content.splitlines()]
    return lines


def test_batch_lines_carry_exactly_the_synchronous_body(tmp_path: Path, server: OpenAICompatibleServer) -> None:
    _eval(tmp_path, server, out="sync", options={"batch": False, "max_image_side": 64})
    sync_bodies = sorted(json.dumps(r.body, sort_keys=True) for r in _chats(server))
    (tmp_path / "cache").rename(tmp_path / "cache-sync")  # the batch run must ask, not hit
    summary = _eval(tmp_path, server, out="batch", options={"max_image_side": 64})
    lines = _batch_lines(server)
    assert len(lines) == 24 and len({line["custom_id"] for line in lines}) == 24
    assert {(line["method"], line["url"]) for line in lines} == {("POST", "/v1/chat/completions")}
    assert sorted(json.dumps(line["body"], sort_keys=True) for line in lines) == sync_bodies
    assert any("response_format" in line["body"] for line in lines)  # structured output travels too
    assert len(_chats(server)) == 24  # the batch run sent no synchronous request
    rows = _rows(tmp_path, "batch")
    assert len(rows) == 24 and all(r.ok for r in rows)
    assert summary["providers"]["gpt"]["tasks"]["vqa"]["answered"] == 15 and summary["providers"]["gpt"]["batch"]
    assert "(batch price) |" in (tmp_path / "batch" / "report.md").read_text()


def test_answers_are_cached_for_a_later_synchronous_run_at_half_the_price(
    tmp_path: Path, server: OpenAICompatibleServer
) -> None:
    _eval(tmp_path, server, out="batch")
    batch_rows = {r.key[0]: r for r in _rows(tmp_path, "batch")}
    _eval(tmp_path, server, out="sync", options={"batch": False})
    assert _chats(server) == []  # every answer came from the cache the batch filled
    sync_rows = _rows(tmp_path, "sync")
    assert all(r.cached for r in sync_rows) and len(sync_rows) == 24
    (tmp_path / "cache").rename(tmp_path / "cache-batch")
    _eval(tmp_path, server, out="fresh", options={"batch": False})  # asked synchronously: full price
    for row in _rows(tmp_path, "fresh"):
        assert row.input_tokens == batch_rows[row.sample_id].input_tokens
        assert batch_rows[row.sample_id].cost_usd == pytest.approx(row.cost_usd / 2)
    for path in [*(tmp_path / "batch").rglob("*"), *(tmp_path / "cache-batch").rglob("*")]:
        assert not path.is_file() or KEY.encode() not in path.read_bytes()


def test_input_files_split_at_the_request_and_size_limits(tmp_path: Path, server: OpenAICompatibleServer) -> None:
    _eval(tmp_path, server, options={"batch_max_requests": 10})
    sizes = [len(content.splitlines()) for _, purpose, content in server.batches.files.values() if purpose == "batch"]
    assert sorted(sizes) == [4, 10, 10]
    server.batches.files.clear()
    _eval(tmp_path, server, out="small", options={"batch_max_mb": 0.008, "max_image_side": 32}, restart=True)
    contents = [content for _, purpose, content in server.batches.files.values() if purpose == "batch"]
    assert len(contents) > 1 and all(len(c) <= 8000 for c in contents)
    assert sum(len(c.splitlines()) for c in contents) == 24 and all(r.ok for r in _rows(tmp_path, "small"))


def test_a_request_too_large_for_any_file_is_an_error_row(tmp_path: Path, server: OpenAICompatibleServer) -> None:
    _eval(tmp_path, server, options={"batch_max_mb": 0.0002})
    rows = _rows(tmp_path)
    assert rows and all(r.error is not None and "over the file limit" in r.error.message for r in rows)


def test_a_batch_that_fails_validation_names_the_limit_and_a_rerun_submits_it_again(
    tmp_path: Path, server: OpenAICompatibleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.batches.fail_next(BatchFault.fail_validation())
    summary = _eval(tmp_path, server)
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "failed validation" in line]
    assert "token_limit_exceeded" in line and "Enqueued token limit" in line
    assert all(r.error is not None and r.error.type == "BatchError" for r in _rows(tmp_path))
    assert summary["providers"]["gpt"]["tasks"]["vqa"]["errors"] == 15
    rerun = _eval(tmp_path, server)
    assert rerun["reasked_errors"] == 24 and all(r.ok for r in _rows(tmp_path))


def test_per_line_errors_become_error_rows(tmp_path: Path, server: OpenAICompatibleServer) -> None:
    server.batches.fail_next(BatchFault("line_errors", every=3))
    _eval(tmp_path, server)
    rows = _rows(tmp_path)
    failed = [r for r in rows if r.error is not None]
    assert len(failed) == 8 and len(rows) == 24
    assert all(r.error.type == "HTTPStatusError" and "HTTP 400: Invalid image" in r.error.message for r in failed)


def test_an_expired_batch_keeps_its_finished_lines_and_the_rerun_submits_only_the_rest(
    tmp_path: Path, server: OpenAICompatibleServer
) -> None:
    server.batches.fail_next(BatchFault.expire(at=0.5))
    _eval(tmp_path, server)
    rows = _rows(tmp_path)
    expired = {r.sample_id for r in rows if r.error is not None}
    assert len(expired) == 12 and all("expired" in r.error.message for r in rows if r.error is not None)
    first_batch = set(server.batches.submitted)
    _eval(tmp_path, server)
    resubmitted = [cid for cid, n in server.batches.submitted.items() if n == 2]
    assert len(resubmitted) == 12 and set(server.batches.submitted) == first_batch
    assert all(r.ok for r in _rows(tmp_path))


def test_a_completed_batch_without_an_output_file_reads_its_error_file(
    tmp_path: Path, server: OpenAICompatibleServer
) -> None:
    server.batches.fail_next(BatchFault("no_output_file"))
    _eval(tmp_path, server)
    [batch] = server.batches.batches.values()
    assert batch.final == "completed" and batch.output_file_id is None
    rows = _rows(tmp_path)
    assert len(rows) == 24 and all(r.error is not None and "Invalid image" in r.error.message for r in rows)


def test_each_state_change_is_one_line_and_a_stall_in_finalizing_is_waited_out(
    tmp_path: Path, server: OpenAICompatibleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.batches.fail_next(BatchFault("stall_finalizing", stall_s=0.5))
    _eval(tmp_path, server)
    err = capsys.readouterr().err
    changes = [line.split(": ", 2)[2] for line in err.splitlines() if "->" in line]
    assert [c.split(" (")[0] for c in changes] == [
        "validating -> in_progress",
        "in_progress -> finalizing",
        "finalizing -> completed",
    ]
    assert "(24 done, 0 failed of 24)" in changes[-1] and all(r.ok for r in _rows(tmp_path))


def test_fallback_sync_asks_what_the_batch_could_not_answer(tmp_path: Path, server: OpenAICompatibleServer) -> None:
    server.batches.fail_next(BatchFault.expire(at=0.25))
    summary = _eval(tmp_path, server, batch_fallback="sync")
    assert len(_chats(server)) == 18  # the 18 lines the batch did not reach, and nothing else
    rows = _rows(tmp_path)
    assert len(rows) == 24 and all(r.ok for r in rows)
    assert all(t["errors"] == 0 for t in summary["providers"]["gpt"]["tasks"].values())


def test_a_batch_whose_creation_a_kill_cut_short_is_found_not_created_again(
    tmp_path: Path, server: OpenAICompatibleServer
) -> None:
    import openai

    _eval(tmp_path, server, out="first")
    state_file = tmp_path / "first" / "batches" / "gpt.json"
    state = json.loads(state_file.read_text())
    # replay the moment between upload and creation: the batch exists at the service, not in the state
    client = openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
    [record] = state["batches"]
    content = server.batches.file_content(record["input_file_id"])
    uploaded = client.files.create(file=("again.jsonl", content), purpose="batch")
    created = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    (tmp_path / "cache").rename(tmp_path / "cache-first")
    out = tmp_path / "second"
    (out / "batches").mkdir(parents=True)
    record.update(input_file_id=uploaded.id, batch_id=None, status="uploaded", collected=False)
    (out / "batches" / "gpt.json").write_text(json.dumps(state))
    _eval(tmp_path, server, out="second")
    assert max(server.batches.submitted.values()) == 2  # the first run's and the replayed one: none more
    assert json.loads((out / "batches" / "gpt.json").read_text())["batches"][0]["batch_id"] == created.id
    assert all(r.ok for r in _rows(tmp_path, "second")) and len(_rows(tmp_path, "second")) == 24


def _cli(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mmbridge.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, **kwargs)


def _start_and_kill(tmp_path: Path, config: Path, out: Path) -> None:
    """Start `mmbridge eval --batch` and kill -9 it while it polls a submitted batch."""
    command = [sys.executable, "-m", "mmbridge.cli.main", "eval", "-p", "gpt", "--dataset", DATASET]
    process = subprocess.Popen(
        [*command, "--out", str(out), "-c", str(config), "--batch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "BATCH_TEST_KEY": KEY},
    )
    state = out / "batches" / "gpt.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if state.exists() and json.loads(state.read_text())["batches"][0]["status"] == "in_progress":
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it was killed"
    process.kill()
    process.wait(10)


@pytest.mark.slow
def test_a_run_killed_while_polling_resumes_and_submits_nothing_twice(tmp_path: Path) -> None:
    with OpenAICompatibleServer(api_key=KEY, max_seconds=120, batch_timing=BatchTiming(in_progress_s=4.0)) as server:
        config = _config_file(tmp_path, server)
        out = tmp_path / "out"
        _start_and_kill(tmp_path, config, out)
        assert not (out / "samples.jsonl").exists() or not (out / "samples.jsonl").read_text()
        env = {**os.environ, "BATCH_TEST_KEY": KEY}
        status = _cli("batch", "status", str(out), "-c", str(config), env=env)
        assert status.returncode == 0 and "in_progress" in status.stdout
        rerun = _cli(
            "eval", "-p", "gpt", "--dataset", DATASET, "--out", str(out), "-c", str(config), "--batch", env=env
        )
        assert rerun.returncode == 0, rerun.stderr
        assert "resuming 1 batch(es) of an earlier run (24 requests)" in rerun.stderr
        assert len(server.batches.batches) == 1 and max(server.batches.submitted.values()) == 1
        rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        assert len(rows) == 24 and len({r["sample_id"] for r in rows}) == 24 and not any(r["error"] for r in rows)


@pytest.mark.slow
def test_batch_cancel_stops_the_batches_and_the_rerun_collects_what_they_finished(tmp_path: Path) -> None:
    with OpenAICompatibleServer(api_key=KEY, max_seconds=120, batch_timing=BatchTiming(in_progress_s=3.0)) as server:
        config = _config_file(tmp_path, server)
        out = tmp_path / "out"
        _start_and_kill(tmp_path, config, out)
        env = {**os.environ, "BATCH_TEST_KEY": KEY}
        with pytest.raises(RunError, match="still running; `mmbridge batch cancel"):
            asyncio.run(evaluate(["gpt"], DATASET, out, config=load_config(config), restart=True, progress=False))
        cancel = _cli("batch", "cancel", str(out), "-c", str(config), env=env)
        assert cancel.returncode == 0 and "cancelled" in cancel.stdout
        rerun = _cli(
            "eval", "-p", "gpt", "--dataset", DATASET, "--out", str(out), "-c", str(config), "--batch", env=env
        )
        assert rerun.returncode == 0, rerun.stderr
        rows = read_rows(out / "samples.jsonl")
        stopped = [r for r in rows if r.error is not None]
        assert len(rows) == 24 and 0 < len(stopped) < 24
        assert all("cancelled" in r.error.message for r in stopped)


def test_batch_commands_and_flags_fail_in_one_line(tmp_path: Path) -> None:
    status = _cli("batch", "status", str(tmp_path))
    assert status.returncode == 2 and status.stderr.count("\n") == 1 and "holds no batches" in status.stderr
    fake = _cli("eval", "-p", "fake", "--dataset", DATASET, "--out", str(tmp_path / "o"), "--batch")
    assert fake.returncode == 2 and "none of these providers answers in batches" in fake.stderr
    assert "Traceback" not in fake.stderr + status.stderr
