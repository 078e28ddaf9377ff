"""Run folders written by real evaluations, and one changed by hand, for the viewer's tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mmbridge.eval.evaluate import evaluate
from mmbridge.eval.rows import Row, RowError

DATASET = "builtin:shapes?split=val&images=30"


@contextlib.contextmanager
def inside(folder: Path):
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def flip(row: Row) -> Row:
    """The row as if its provider had answered the other way (scored rows only)."""
    if row.score is None:
        return row
    return row.model_copy(update={"score": 1.0 - row.score, "answer": f"not {row.answer}"})


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/first (fake + prior, complete), runs/second (first's rows with every 3rd prior row flipped
    and one fake verify row an error, no summary.json yet), runs/old/third (fake alone, 4 samples a task);
    a hidden .cache folder."""
    home = tmp_path_factory.mktemp("view")
    root = home / "runs"
    with inside(home), ThreadPoolExecutor(1) as pool:  # a thread of its own: a browser's loop may run in this one
        pool.submit(asyncio.run, evaluate(["fake", "prior"], DATASET, root / "first", progress=False)).result()
        pool.submit(asyncio.run, evaluate(["fake"], DATASET, root / "old" / "third", limit=4, progress=False)).result()
    second = root / "second"
    second.mkdir()
    for name in ("run.json", "inputs.jsonl"):
        shutil.copy(root / "first" / name, second / name)
    lines = (root / "first" / "samples.jsonl").read_text().splitlines()
    rows = [Row.model_validate_json(line) for line in lines]
    changed = [flip(r) if r.provider == "prior" and i % 3 == 0 else r for i, r in enumerate(rows)]
    failed = next(i for i, r in enumerate(changed) if r.provider == "fake" and r.task.value == "verify")
    changed[failed] = Row(
        **{k: getattr(changed[failed], k) for k in ("sample_id", "provider", "task", "type")},
        error=RowError(type="ProviderTimeoutError", message="no answer in 30 s"),
    )
    (second / "samples.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in changed))
    (root / ".cache").mkdir()
    (root / ".cache" / "run.json").write_text(json.dumps({"providers": {}}))
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and modification time."""
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def rows_of(folder: Path) -> list[Row]:
    """Every line of the run's samples.jsonl as a Row."""
    return [Row.model_validate_json(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
