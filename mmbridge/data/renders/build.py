"""Write a ``renders`` dataset: photo-like scenes (draw.py) saved as JPEGs, with Sort-of-CLEVR's
question families asked about them in English, and no scene in the rows.

Per picture, six non-relational questions (the shape of the object of a colour; whether it is in
the left or right half; in the top or bottom half) and six relational ones (the shape of the
object closest to, or furthest from, the object of a colour; how many objects share its shape).
A question whose answer would rest on a near tie (an object near the middle, two objects about
as close) is not asked. Positions are where objects appear in the picture.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

from PIL import Image

from ..sample import Sample
from ..sort_of_clevr import question_sample
from ..splits import write_in_order
from .draw import SHAPES, Thing, draw_scene, place

__all__ = ["GENERATOR_VERSION", "MANIFEST", "generate_renders"]

GENERATOR_VERSION = 1
MANIFEST = "renders.json"
PER_KIND = 6  # questions of each kind per picture
_COUNTS = tuple(str(n) for n in range(1, 7))


def _question(things: list[Thing], relational: bool, rng: random.Random, width: int, height: int) -> tuple | None:
    """(subtype, question, answer, choices) about one object picked at random, or None on a near tie."""
    subject = rng.choice(things)
    margin = 0.04 * width
    (x, y), color = subject.centre, subject.color
    if not relational:
        subtype = rng.choice(("shape", "horizontal", "vertical"))
        if subtype == "shape":
            return subtype, f"What is the shape of the {color} object?", subject.shape, SHAPES
        if subtype == "horizontal":
            if abs(x - width / 2) < margin:
                return None
            side = "left" if x < width / 2 else "right"
            return subtype, f"Is the {color} object on the left or the right of the image?", side, ("left", "right")
        if abs(y - height / 2) < margin:
            return None
        side = "top" if y < height / 2 else "bottom"
        return subtype, f"Is the {color} object at the top or the bottom of the image?", side, ("top", "bottom")
    subtype = rng.choice(("closest", "furthest", "count"))
    if subtype == "count":
        same = sum(1 for t in things if t.shape == subject.shape)
        return subtype, f"How many objects have the same shape as the {color} object?", str(same), _COUNTS
    others = sorted((math.dist(subject.centre, t.centre), i) for i, t in enumerate(things) if t is not subject)
    if len(others) < 2:
        return None
    first, second = (others[0], others[1]) if subtype == "closest" else (others[-1], others[-2])
    if abs(first[0] - second[0]) < margin:
        return None
    where = "closest to" if subtype == "closest" else "furthest from"
    target = things[first[1]]
    return subtype, f"What is the shape of the object {where} the {color} object?", target.shape, SHAPES


def _samples(things: list[Thing], rng: random.Random, image: Path, base: str, width: int, height: int) -> list[Sample]:
    out = []
    for n in range(2 * PER_KIND):
        relational = n >= PER_KIND
        for _ in range(10):  # a near tie is asked again about another object
            asked = _question(things, relational, rng, width, height)
            if asked is not None:
                break
        else:
            continue
        out.append(question_sample(f"{base}-{n:02d}", image, relational, asked))
    return out


def generate_renders(
    out: str | os.PathLike[str],
    images: int = 10_000,
    seed: int = 0,
    *,
    width: int = 128,
    height: int = 96,
    quality: int = 80,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Generate ``images`` photo-like pictures into ``out`` (80% train, 10% val, 10% test) and
    return the manifest. Each holds three to six objects; same seed, same bytes."""
    if images < 3:
        raise ValueError("images must be at least 3 (one per split)")
    if min(width, height) < 48:
        raise ValueError(f"pictures of {width}x{height} are too small for six objects; use 48 pixels a side or more")
    root = Path(out)
    (root / "images").mkdir(parents=True, exist_ok=True)

    def make(split: str, index: int) -> list[Sample]:
        rng = random.Random(f"renders:{seed}:{index}")
        things = place(rng, width, height, rng.randint(3, 6))
        image = root / "images" / f"{index:06d}.jpg"
        Image.fromarray(draw_scene(things, width, height, rng)).save(image, "JPEG", quality=quality)
        return _samples(things, rng, image, f"{split}-{index:06d}", width, height)

    counts = write_in_order(root, images, "rendering scenes", make, progress)
    manifest = {
        "generator": "renders",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "width": width,
        "height": height,
        "quality": quality,
        "splits": counts,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # written last: marks a complete dataset
    return manifest
