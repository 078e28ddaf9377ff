"""Every command that writes checks its --out before any work: a file, a path under a file, or a
folder that cannot be made is one line, exit 2, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import cli

SHAPES = "builtin:shapes?images=20"
WRITERS = {
    "data shapes": ["data", "shapes", "--images", "10"],
    "eval": ["eval", "-p", "fake", "--dataset", SHAPES],
    "demo": ["demo"],
    "cascade fit": ["cascade", "fit", "-p", "fake", "-p", "prior", "--dataset", SHAPES, "--target-accuracy", "0.9"],
    "train": ["train", "--data", SHAPES],
}


@pytest.mark.parametrize("command", sorted(WRITERS))
@pytest.mark.parametrize("out", ["taken", "taken/sub", "/proc/mmbridge-cannot-be-here"])
def test_an_out_that_cannot_be_a_folder_is_one_line_before_work(command: str, out: str, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    ran = cli(*WRITERS[command], "--out", out)
    assert ran.one_line_refusal and "--out" in ran.err, ran.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no cache, no dataset, no run folder
    assert (tmp_path / "taken").read_text() == "a file"
