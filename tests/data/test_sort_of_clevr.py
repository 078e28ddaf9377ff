"""Sort-of-CLEVR: every answer agrees with the rendered pixels, and rows carry no scene."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from mmbridge.data import load_dataset
from mmbridge.data.sort_of_clevr import COLORS, HALF


def _objects(path: Path) -> dict[str, tuple[str, float, float]]:
    """colour -> (shape, x, y), read back from the pixels alone."""
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    found = {}
    for name, rgb in COLORS.items():
        ys, xs = np.nonzero(np.abs(pixels - rgb).sum(-1) < 30)
        x, y = xs.mean(), ys.mean()
        # a square fills the corners of its box; a circle leaves them white
        corner = pixels[int(round(y)) - HALF + 1, int(round(x)) - HALF + 1]
        shape = "square" if np.abs(corner - rgb).sum() < 30 else "circle"
        found[name] = (shape, x, y)
    return found


def _expected(question: str, objects: dict[str, tuple[str, float, float]]) -> str:
    color = re.search(r"the (\w+) object", question).group(1)
    shape, x, y = objects[color]
    if question.startswith("What is the shape of the object"):
        others = sorted((math.hypot(x - ox, y - oy), s) for c, (s, ox, oy) in objects.items() if c != color)
        return others[0][1] if "closest" in question else others[-1][1]
    if question.startswith("What is the shape"):
        return shape
    if "left or the right" in question:
        return "left" if x < 75 / 2 else "right"
    if "top or the bottom" in question:
        return "top" if y < 75 / 2 else "bottom"
    return str(sum(1 for s, _, _ in objects.values() if s == shape))


def test_every_answer_matches_the_image(tmp_path: Path) -> None:
    rows = [
        s
        for split in ("train", "val", "test")
        for s in load_dataset(f"builtin:sort-of-clevr?split={split}&images=12&seed=3", cache_dir=tmp_path)
    ]
    assert len(rows) == 12 * 20
    per_image = Counter((s.image, s.meta["type"]) for s in rows)
    assert set(per_image.values()) == {10}  # ten relational and ten non-relational questions an image
    assert {s.meta["subtype"] for s in rows} == {"shape", "horizontal", "vertical", "closest", "furthest", "count"}
    seen = {}
    for s in rows:
        assert "scene" not in s.meta and s.answers[0] in s.choices
        objects = seen.setdefault(s.image, _objects(s.image))
        assert s.answers == [_expected(s.question, objects)], s.question


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = list(load_dataset("builtin:sort-of-clevr?split=val&images=10&seed=1", cache_dir=tmp_path / "a"))
    again = list(load_dataset("builtin:sort-of-clevr?split=val&images=10&seed=1", cache_dir=tmp_path / "b"))
    assert [(s.question, s.answers) for s in first] == [(s.question, s.answers) for s in again]
    assert first[0].image.read_bytes() == again[0].image.read_bytes()
