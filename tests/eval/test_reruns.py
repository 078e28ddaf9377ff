"""Evaluations that stay true across reruns: what a folder measured, one writer, errors asked again."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmbridge import ConfigError, DatasetError, RunError
from mmbridge.config import load_config
from mmbridge.eval.evaluate import _pace, evaluate
from mmbridge.eval.rundir import exclusive
from mmbridge.eval.runner import read_rows

DATASET = "builtin:shapes?split=test&images=60"


def _config(tmp_path: Path, **fake: object) -> object:
    options = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fake.items())
    path = tmp_path / "mmbridge.toml"
    path.write_text(f'[cache]\nenabled = false\n[providers.f]\ntype = "fake"\n{options}')
    return load_config(path)


def _run(out: Path, config: object, dataset: str = DATASET, **options: object) -> dict:
    """The run's summary as summary.json holds it."""
    summary = asyncio.run(evaluate(["f"], dataset, out, limit=5, config=config, progress=False, **options))
    return summary.model_dump(mode="json", by_alias=True)


def test_a_changed_provider_or_other_samples_refuse_and_restart_starts_afresh(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(out, _config(tmp_path, seed=0))
    record = json.loads((out / "run.json").read_text())
    assert record["providers"]["f"] == {"type": "fake", "model": "fake-1", "seed": 0}
    assert record["samples"]["count"] == 15 and record["dataset"] == DATASET
    with pytest.raises(RunError, match=r"provider 'f' \(seed 0 -> 1\)"):
        _run(out, _config(tmp_path, seed=1))
    with pytest.raises(RunError, match=r"the samples \(dataset"):
        _run(out, _config(tmp_path, seed=0), dataset="builtin:shapes?split=test&images=60&seed=4")
    before = {r.key: r.prediction for r in read_rows(out / "samples.jsonl")}
    _run(out, _config(tmp_path, seed=1), restart=True)
    after = {r.key: r.prediction for r in read_rows(out / "samples.jsonl")}
    assert after.keys() == before.keys() and after != before  # asked afresh, the old answers gone
    assert json.loads((out / "run.json").read_text())["providers"]["f"]["seed"] == 1


def test_one_writer_per_folder_and_a_killed_writer_leaves_no_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = _config(tmp_path)
    with exclusive(out), pytest.raises(RunError, match="another mmbridge eval is writing to"):
        _run(out, config)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pathlib import Path; from mmbridge.eval.rundir import exclusive\n"
            f"with exclusive(Path({str(out)!r})): print('held', flush=True); import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunError):
        _run(out, config)
    holder.kill()
    holder.wait(10)
    (out / ".report.html.x1y2.tmp").write_text("a report write cut short")
    _run(out, config)  # the lock died with its holder
    assert not list(out.glob(".*.tmp"))


def test_errors_are_asked_again_unless_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _run(out, _config(tmp_path, error_rate=0.4))
    errors = sum(t["errors"] for t in first["providers"]["f"]["tasks"].values())
    assert errors > 0 and first["reasked_errors"] == 0
    kept = _run(out, _config(tmp_path), keep_errors=True)  # the outage is over, but errors are kept
    assert kept["reasked_errors"] == 0 and sum(t["errors"] for t in kept["providers"]["f"]["tasks"].values()) == errors
    again = _run(out, _config(tmp_path))
    assert again["reasked_errors"] == errors
    rows = read_rows(out / "samples.jsonl")
    assert len(rows) == 15 and all(r.error is None for r in rows)
    assert (out / "samples.jsonl").read_text().count("\n") == 15  # one row per (sample, provider)


def test_bad_rows_and_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = _config(tmp_path)
    _run(out, config)
    lines = (out / "samples.jsonl").read_text().splitlines()
    (out / "samples.jsonl").write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(RunError, match=r"samples.jsonl line 2: not a result row"):
        _run(out, config)
    row = json.loads(lines[0])
    del row["provider"]
    (out / "samples.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    with pytest.raises(RunError, match=r"line 1: not a result row \(provider: Field required\)"):
        _run(out, config)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        _run(tmp_path / "file", config)
    with pytest.raises(ConfigError, match="named more than once"):
        asyncio.run(evaluate(["f", "f"], DATASET, tmp_path / "o2", config=config, progress=False))
    with pytest.raises(DatasetError, match="images '999999999999' is not a whole number from 3 to 1,000,000"):
        _run(tmp_path / "o3", config, dataset="builtin:shapes?images=999999999999")


def test_the_cli_refuses_in_one_line_and_restarts_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ..test_broken_files import _one_line_error, cli

    config = tmp_path / "mmbridge.toml"
    command = ["eval", "-p", "f", "--dataset", DATASET, "--limit", "3", "--out", str(tmp_path / "o"), "-c", str(config)]
    config.write_text('[cache]\nenabled = false\n[providers.f]\ntype = "fake"\n')
    assert cli(capsys, *command)[0] == 0
    config.write_text('[cache]\nenabled = false\n[providers.f]\ntype = "fake"\nseed = 3\n')
    _one_line_error(*cli(capsys, *command), "measured something else", "--restart")
    assert cli(capsys, *command, "--restart", "--keep-errors")[0] == 0


def test_each_provider_runs_at_its_own_pace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mmbridge.toml"
    path.write_text(
        '[cache]\nenabled = false\n[providers.slow]\ntype = "fake"\ndelay_s = 0.1\n'
        '[providers.fast]\ntype = "fake"\nseed = 1\n[providers.limited]\ntype = "fake"\nmax_concurrency = 3\n'
    )
    out = tmp_path / "out"
    names = ["slow", "fast", "limited"]
    asyncio.run(
        evaluate(names, DATASET, out, limit=3, concurrency={"slow": 1}, config=load_config(path), progress=False)
    )
    order = [r.provider for r in read_rows(out / "samples.jsonl")]  # the order the answers arrived in
    assert len(order) == 27
    slow_before = [i for i, p in enumerate(order) if p == "slow"][1]
    assert all(i < slow_before for i, p in enumerate(order) if p != "slow")  # nobody waited for slow
    from mmbridge.client import Client

    with Client("limited", config=load_config(path)) as limited, Client("fast", config=load_config(path)) as fast:
        assert _pace("limited", limited, None) == 3 and _pace("fast", fast, None) == 8
        assert _pace("fast", fast, {"fast": 2}) == 2 and _pace("fast", fast, 5) == 5

    from ..test_broken_files import cli

    code, err = cli(capsys, "eval", "-p", "fast", "--dataset", DATASET, "--out", str(out), "--concurrency", "fast=0")
    assert code == 2 and "--concurrency 'fast=0'" in err
