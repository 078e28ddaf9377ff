"""The photo-like ``renders`` data set: every answer recomputed from the scene the generator drew,
the same bytes for the same seed, pictures that hold no flat colour, and bounded options."""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from mmbridge.data import load_dataset
from mmbridge.data.renders import generate_renders
from mmbridge.data.renders.draw import place
from mmbridge.errors import DatasetError


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("renders")
    generate_renders(out, images=30, seed=7, progress=False)
    return out


def _things(path: str) -> list:
    rng = random.Random(f"renders:7:{int(Path(path).stem)}")
    return place(rng, 128, 96, rng.randint(3, 6))


def test_every_answer_follows_from_the_drawn_scene(renders: Path) -> None:
    rows = [r for split in ("train", "val", "test") for r in load_dataset(renders / f"{split}.jsonl")]
    assert {r.meta["subtype"] for r in rows} == {"shape", "horizontal", "vertical", "closest", "furthest", "count"}
    for row in rows:
        things = _things(str(row.image))
        subject = next(t for t in things if f"the {t.color} object" in (row.question or ""))
        x, y = subject.centre
        subtype, answer = row.meta["subtype"], row.answers[0]
        if subtype == "shape":
            assert answer == subject.shape
        elif subtype == "horizontal":
            assert answer == ("left" if x < 64 else "right")
        elif subtype == "vertical":
            assert answer == ("top" if y < 48 else "bottom")
        elif subtype == "count":
            assert answer == str(sum(t.shape == subject.shape for t in things))
        else:
            others = sorted((math.dist(subject.centre, t.centre), t.shape) for t in things if t is not subject)
            assert answer == (others[0] if subtype == "closest" else others[-1])[1]


def test_same_seed_same_bytes_and_no_flat_colour(renders: Path, tmp_path: Path) -> None:
    generate_renders(tmp_path, images=30, seed=7, progress=False)
    for name in ("000003.jpg", "000017.jpg"):
        ours, again = (
            hashlib.sha256((root / "images" / name).read_bytes()).hexdigest() for root in (renders, tmp_path)
        )
        assert ours == again
    pixels = np.asarray(PILImage.open(renders / "images" / "000003.jpg").convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(pixels, axis=0, return_counts=True)
    assert counts.max() < 0.05 * len(pixels)  # textured floor, shading: no colour covers 5% of the picture (flat: ~80%)


def test_renders_options_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="48 pixels a side"):
        load_dataset("builtin:renders?images=10&size=40", cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="unknown option"):
        load_dataset("builtin:renders?images=10&antialias=2", cache_dir=tmp_path)
