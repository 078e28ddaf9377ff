"""``mmbridge data shapes`` and ``mmbridge data info`` from the command line."""

from __future__ import annotations

import json

from ..test_cli import run


def test_data_shapes_writes_the_splits(tmp_path) -> None:
    result = run("data", "shapes", "--out", str(tmp_path / "out"), "--images", "10", "--seed", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test.jsonl: 8 samples on 1 images" in result.stdout
    first = json.loads((tmp_path / "out" / "train.jsonl").read_text().splitlines()[0])
    assert (tmp_path / "out" / first["image"]).is_file()


def test_data_info_counts_and_reports_errors(tmp_path) -> None:
    result = run("data", "info", "builtin:shapes?split=val&images=20&seed=1", cwd=tmp_path, env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    assert "relational" in result.stdout and (tmp_path / ".mmbridge" / "cache" / "datasets").is_dir()
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "image": "nope.png", "task": "vqa", "question": "q?"}\n')
    bad = run("data", "info", "bad.jsonl", cwd=tmp_path)
    assert bad.returncode == 2 and "bad.jsonl:1: " in bad.stderr and "Traceback" not in bad.stderr
