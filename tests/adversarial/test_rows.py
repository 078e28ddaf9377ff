"""Rows are accountable without run.json, and exit codes tell the truth about them."""

from __future__ import annotations

from pathlib import Path

from .conftest import cli

SHAPES = "builtin:shapes?images=20"


def _config(path: Path, seed: int, error_rate: float = 0.0) -> str:
    path.write_text(f'[providers.m]\ntype = "fake"\nseed = {seed}\nerror_rate = {error_rate}\n')
    return str(path)


def test_a_rerun_without_run_json_refuses_another_configs_rows(tmp_path: Path) -> None:
    first = cli("eval", "-c", _config(tmp_path / "a.toml", seed=1), "-p", "m", "--dataset", SHAPES, "--out", "o")
    assert first.code == 0, first.err
    (tmp_path / "o" / "run.json").unlink()
    rerun = cli("eval", "-c", _config(tmp_path / "b.toml", seed=2), "-p", "m", "--dataset", SHAPES, "--out", "o")
    assert rerun.one_line_refusal, rerun.err
    assert "samples.jsonl line 1: the row was written by another config of provider 'm'" in rerun.err
    same = cli("eval", "-c", str(tmp_path / "a.toml"), "-p", "m", "--dataset", SHAPES, "--out", "o")
    assert same.code == 0, same.err  # its own rows are its own, run.json or not


def test_rows_of_a_sample_or_provider_the_run_lacks_are_refused_by_line(tmp_path: Path) -> None:
    assert cli("eval", "-p", "fake", "--dataset", SHAPES, "--out", "o").code == 0
    rows = tmp_path / "o" / "samples.jsonl"
    lines = rows.read_text().splitlines()
    for line, says in (
        (lines[0].replace('"test-000001', '"nowhere'), "is not one of this run's samples"),
        (lines[0].replace('"provider":"fake"', '"provider":"stranger"'), "provider 'stranger' is not one of"),
    ):
        rows.write_text("\n".join([*lines, line]) + "\n")
        ran = cli("eval", "-p", "fake", "--dataset", SHAPES, "--out", "o")
        assert ran.one_line_refusal and f"line {len(lines) + 1}: " in ran.err and says in ran.err, ran.err


def test_a_provider_that_answers_nothing_makes_exit_3_unless_allowed(tmp_path: Path) -> None:
    config = _config(tmp_path / "c.toml", seed=5, error_rate=1.0)
    failed = cli("eval", "-c", config, "-p", "m", "-p", "fake", "--dataset", SHAPES, "--out", "o")
    assert failed.code == 3 and "every call to m failed" in failed.err and "Traceback" not in failed.err
    assert (tmp_path / "o" / "report.html").is_file()  # the run finished: its reports are written
    allowed = cli("eval", "-c", config, "-p", "m", "--dataset", SHAPES, "--out", "o", "--allow-errors")
    assert allowed.code == 0, allowed.err


def test_cascade_fit_names_the_member_that_failed(tmp_path: Path) -> None:
    config = _config(tmp_path / "c.toml", seed=5, error_rate=1.0)
    args = ["--dataset", SHAPES, "--out", "o", "--target-accuracy", "0.9", "-c", config]
    ran = cli("cascade", "fit", "-p", "fake", "-p", "m", *args)
    assert ran.code == 1 and ran.err.count("\n") == 1 and "every call to m failed" in ran.err, ran.err
