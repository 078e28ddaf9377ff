"""Generated pictures saved as users save them (look.py): anti-aliased, JPEG, a background
gradient, not square, crowded; the same scenes and questions as the clean ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from mmbridge.data import load_dataset
from mmbridge.data.look import Look
from mmbridge.data.shapes import Style, generate_shapes
from mmbridge.errors import DatasetError

from ..test_cli import run


def _pixels(path: str | Path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("RGB")).astype(int)


def test_a_look_changes_the_pictures_and_nothing_else(tmp_path: Path) -> None:
    generate_shapes(tmp_path / "clean", images=12, seed=3, progress=False)
    generate_shapes(tmp_path / "saved", images=12, seed=3, look=Look(antialias=4, jpeg=80, gradient=60), progress=False)
    clean = (tmp_path / "clean" / "train.jsonl").read_text().replace(".png", "")
    saved = (tmp_path / "saved" / "train.jsonl").read_text().replace(".jpg", "")
    assert clean.replace("clean", "x") == saved.replace("saved", "x")  # the same scenes, questions and answers
    manifest = json.loads((tmp_path / "saved" / "shapes.json").read_text())
    assert manifest["look"] == {"antialias": 4, "jpeg": 80, "gradient": 60}
    assert "look" not in json.loads((tmp_path / "clean" / "shapes.json").read_text())
    picture = _pixels(next((tmp_path / "saved" / "images").glob("*.jpg")))
    corners = [picture[1, 1], picture[1, -2], picture[-2, 1], picture[-2, -2]]
    assert max(c.mean() for c in corners) - min(c.mean() for c in corners) > 25  # the background shades


def test_anti_aliased_edges_blend_and_clean_ones_do_not(tmp_path: Path) -> None:
    style = Style(
        colors={"red": (220, 40, 40), "blue": (40, 80, 220)}, shapes=("circle",), min_objects=2, max_objects=2
    )
    generate_shapes(tmp_path / "clean", images=3, seed=1, style=style, progress=False)
    generate_shapes(tmp_path / "soft", images=3, seed=1, style=style, look=Look(antialias=4), progress=False)

    def colours(folder: str) -> int:
        picture = _pixels(tmp_path / folder / "images" / "000000.png").reshape(-1, 3)
        return len({tuple(p) for p in picture})

    assert colours("clean") == 3  # white, red, blue: every pixel exactly one of them
    assert colours("soft") > 10  # edge pixels are blends


def test_sort_of_clevr_pictures_can_be_wide_and_their_halves_follow(tmp_path: Path) -> None:
    rows = list(
        load_dataset("builtin:sort-of-clevr?split=train&images=20&seed=4&size=100&height=75", cache_dir=tmp_path)
    )
    assert PILImage.open(rows[0].image).size == (100, 75)
    sides = {r.answers[0] for r in rows if r.meta["subtype"] == "horizontal"}
    assert sides == {"left", "right"}
    clean = load_dataset("builtin:sort-of-clevr?split=train&images=20&seed=4", cache_dir=tmp_path)
    assert Path(clean.meta["folder"]).name == "sort-of-clevr-v1-n20-seed4"  # the folder of earlier releases


def test_crowded_scenes_take_sixteen_colours(tmp_path: Path) -> None:
    rows = list(load_dataset("builtin:shapes?split=train&images=20&seed=2&size=128&objects=12-16", cache_dir=tmp_path))
    counts = {len(r.meta["scene"]["objects"]) for r in rows}
    assert min(counts) >= 12 and max(counts) <= 16


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("objects=17", "objects must lie in 1-16"),
        ("objects=many", "objects must be a number or a range"),
        ("jpeg=100", "jpeg '100' is not a whole number from 0 to 95"),
        ("antialias=0", "antialias '0' is not a whole number from 1 to 8"),
        ("objects=16&size=24", "do not fit apart in 24x24"),
    ],
)
def test_options_out_of_range_are_one_line_errors(tmp_path: Path, query: str, says: str) -> None:
    with pytest.raises(DatasetError, match=says):
        load_dataset(f"builtin:shapes?images=10&{query}", cache_dir=tmp_path)


def test_the_cli_makes_looks_and_refuses_crowds_in_one_line(tmp_path: Path) -> None:
    made = run(
        "data", "shapes", "--out", "d", "--images", "10", "--jpeg", "75", "--size", "96", "--height", "64", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    assert PILImage.open(next((tmp_path / "d" / "images").glob("*.jpg"))).size == (96, 64)
    crowded = run("data", "shapes", "--out", "e", "--images", "10", "--objects", "16", "--size", "24", cwd=tmp_path)
    assert crowded.returncode == 2 and "do not fit apart" in crowded.stderr and "Traceback" not in crowded.stderr


def test_data_shapes_refuses_an_out_that_is_a_file_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    for out in ("taken", "taken/sub"):
        result = run("data", "shapes", "--out", out, "--images", "10", cwd=tmp_path)
        assert result.returncode == 2 and "--out" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "taken").read_text() == "x"
