"""Broken files and bad values from the command line: one line on stderr, exit 2, never a traceback."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmbridge.cli.main import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the mmbridge command in this process; (exit code, stderr)."""
    argv = sys.argv
    sys.argv = ["mmbridge", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


def _one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], err


def _filled_cache(shapes_png: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    for i in range(8):
        assert cli(capsys, "ask", str(shapes_png), f"What is shape {i}?", "-p", "fake")[0] == 0
    # the closed clients' SQLite connections on worker threads end with the collector; one still open
    # would lend its read-write descriptor to the next connection in this process (SQLite reuses a
    # process's descriptors of a file), and an immutable file would then take writes
    gc.collect()
    return Path(".mmbridge/cache")


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files to mark immutable (read-only even for root); unmarked after the test."""
    marked: list[Path] = []
    yield marked
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def _break(kind: str, cache: Path, immutable: list[Path]) -> None:
    db = cache / "cache.db"
    if kind == "garbage":
        db.write_bytes(b"\x07not a database" * 300)
    elif kind == "truncated":
        with db.open("r+b") as f:
            f.truncate(4096)
    elif kind == "not a folder":
        shutil.rmtree(cache)
        cache.write_text("a file where the cache folder should be")
    elif kind == "read-only":
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(db)]).returncode != 0:
            pytest.skip("needs chattr on a file system that supports it")
        immutable.append(db)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "not a folder", "read-only"])
def test_a_broken_cache_is_one_line_for_every_command(
    kind: str, shapes_png: Path, capsys: pytest.CaptureFixture[str], immutable: list[Path]
) -> None:
    cache = _filled_cache(shapes_png, capsys)
    _break(kind, cache, immutable)
    commands = [
        ["ask", str(shapes_png), "What is new?", "-p", "fake"],
        ["eval", "-p", "fake", "--dataset", "builtin:shapes?split=test&images=4", "--out", "run"],
        ["cache", "stats"],
        ["cache", "clear"],
    ]
    for command in commands:
        code, err = cli(capsys, *command)
        _one_line_error(code, err, "cache", str(cache))


def test_a_cache_that_fails_mid_run_stops_eval_instead_of_losing_answers(
    shapes_png: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import diskcache

    def full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(diskcache.Cache, "set", full)
    code, err = cli(capsys, "eval", "-p", "fake", "--dataset", "builtin:shapes?split=test&images=4", "--out", "run")
    _one_line_error(code, err, "cannot write to the answer cache", "disk is full")


def test_invalid_utf8_in_a_question_from_the_command_line(shapes_png: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mmbridge.cli.main", "ask", str(shapes_png), b"what \xff\xfe is it?", "-p", "fake"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    _one_line_error(done.returncode, done.stderr, "question", "UTF-8")


@pytest.mark.parametrize("template", ["Q: {answer}", "Q: {0}", "Q: {question", "{question!z}"])
def test_config_check_catches_prompt_templates_that_cannot_be_formatted(
    template: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mmbridge_openai")
    config = tmp_path / "mmbridge.toml"
    config.write_text(f'[providers.gpt]\ntype = "openai"\nprompts = {{ vqa = {template!r} }}\n')
    code, err = cli(capsys, "config", "check", "-c", str(config))
    _one_line_error(code, err, "providers.gpt", "template 'vqa' cannot be formatted", "{question}")
    config.write_text("[providers.gpt]\ntype = \"openai\"\nprompts = { vqa = 'Q: {question} {{literal}}' }\n")
    assert cli(capsys, "config", "check", "-c", str(config))[0] == 0
