"""Sort-of-CLEVR, generated from its specification (Santoro et al. 2017, "A simple neural network
module for relational reasoning", section 3.2 and the supplementary material).

Each 75x75 image holds six objects, one of each colour (red, green, blue, orange, gray, yellow),
each a square or a circle, on a white background. Every image gets 10 non-relational questions
(the shape of the object of a colour; whether it is in the left or right half; in the top or
bottom half) and 10 relational ones (the shape of the object closest to, or furthest from, the
object of a colour; how many objects share its shape). The paper encodes questions as binary
vectors; here they are English sentences, so a model must read them. Rows carry image, question,
answers, choices and ``meta.type`` (``non-relational`` / ``relational``) with ``meta.subtype``,
and no scene: what a user's own data would carry.

``width`` and ``height`` make the same kind of scene in a picture of another shape, and ``look``
saves it as users save pictures (anti-aliased, JPEG, see look.py); the defaults give the paper's
clean 75x75 PNGs.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..types import Task
from .look import Look
from .sample import Sample
from .splits import write_in_order

__all__ = ["COLORS", "GENERATOR_VERSION", "MANIFEST", "generate_sort_of_clevr", "question_sample"]

#: bump when the same seed would produce different data, so caches regenerate
GENERATOR_VERSION = 1
MANIFEST = "sort_of_clevr.json"
SIZE = 75  # image side, pixels
HALF = 5  # half the side of a square, the radius of a circle
COLORS = {
    "red": (255, 0, 0),
    "green": (0, 200, 0),
    "blue": (0, 0, 255),
    "orange": (255, 150, 0),
    "gray": (128, 128, 128),
    "yellow": (230, 230, 0),
}
SHAPES = ("square", "circle")
QUESTIONS_PER_KIND = 10
_COUNTS = tuple(str(n) for n in range(1, len(COLORS) + 1))

Obj = tuple[str, str, int, int]  # colour, shape, x, y (the centre)


def _scene(rng: random.Random, width: int, height: int) -> list[Obj]:
    """Six objects of distinct colours, placed so that no two touch."""
    objects: list[Obj] = []
    for color in COLORS:
        while True:
            x, y = rng.randint(HALF, width - 1 - HALF), rng.randint(HALF, height - 1 - HALF)
            if all(math.hypot(x - ox, y - oy) > 2 * HALF * math.sqrt(2) + 1 for _, _, ox, oy in objects):
                break
        objects.append((color, rng.choice(SHAPES), x, y))
    return objects


def _render(objects: list[Obj], canvas: Image.Image, scale: int, shift: int) -> Image.Image:
    """Draw onto ``canvas``, ``scale`` times the picture's size, everything moved by ``shift``
    canvas pixels (scale 1: every object pixel exactly its colour)."""
    draw = ImageDraw.Draw(canvas)
    k, r = scale, HALF * scale
    for color, shape, x, y in objects:
        x, y = x * k + shift, y * k + shift
        box = (x - r, y - r, x + r + k - 1, y + r + k - 1)
        (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLORS[color])
    return canvas


def _question(
    objects: list[Obj], relational: bool, rng: random.Random, width: int, height: int
) -> tuple[str, str, str, tuple[str, ...]]:
    """(subtype, question, answer, choices) about one object picked at random."""
    color, shape, x, y = subject = rng.choice(objects)
    if not relational:
        subtype = rng.choice(("shape", "horizontal", "vertical"))
        if subtype == "shape":
            return subtype, f"What is the shape of the {color} object?", shape, SHAPES
        if subtype == "horizontal":
            side = "left" if x < width / 2 else "right"
            return subtype, f"Is the {color} object on the left or the right of the image?", side, ("left", "right")
        side = "top" if y < height / 2 else "bottom"
        return subtype, f"Is the {color} object at the top or the bottom of the image?", side, ("top", "bottom")
    subtype = rng.choice(("closest", "furthest", "count"))
    if subtype == "count":
        same = sum(1 for o in objects if o[1] == shape)
        return subtype, f"How many objects have the same shape as the {color} object?", str(same), _COUNTS
    others = sorted((math.hypot(x - ox, y - oy), o) for o in objects if o is not subject for ox, oy in [o[2:]])
    target = others[0][1] if subtype == "closest" else others[-1][1]
    where = "closest to" if subtype == "closest" else "furthest from"
    return subtype, f"What is the shape of the object {where} the {color} object?", target[1], SHAPES


def question_sample(
    sample_id: str, image: Path, relational: bool, asked: tuple[str, str, str, tuple[str, ...]]
) -> Sample:
    """A vqa row of Sort-of-CLEVR's kind from (subtype, question, answer, choices): ``meta.type``
    relational or non-relational, ``meta.subtype`` the question's kind, and no scene."""
    subtype, question, answer, choices = asked
    return Sample(
        id=sample_id,
        image=image,
        task=Task.VQA,
        question=question,
        answers=[answer],
        choices=list(choices),
        meta={"type": "relational" if relational else "non-relational", "subtype": subtype},
    )


def generate_sort_of_clevr(
    out: str | os.PathLike[str],
    images: int = 10_000,
    seed: int = 0,
    *,
    width: int = SIZE,
    height: int = SIZE,
    look: Look | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Generate ``images`` images into ``out`` (80% train, 10% val, 10% test) and return the manifest."""
    if images < 3:
        raise ValueError("images must be at least 3 (one per split)")
    if min(width, height) < 40:
        raise ValueError(f"pictures of {width}x{height} cannot hold six objects apart; use 40 pixels a side or more")
    look = look or Look()
    root = Path(out)
    (root / "images").mkdir(parents=True, exist_ok=True)

    def make(split: str, index: int) -> list[Sample]:
        rng = random.Random(f"sort-of-clevr:{seed}:{index}")
        objects = _scene(rng, width, height)
        canvas = look.canvas(width, height, (255, 255, 255), random.Random(f"look:{seed}:{index}"))
        image = look.save(_render(objects, canvas, look.scale, look.shift), root / "images" / f"{index:06d}")
        samples = []
        for n in range(2 * QUESTIONS_PER_KIND):
            relational = n >= QUESTIONS_PER_KIND
            asked = _question(objects, relational, rng, width, height)
            samples.append(question_sample(f"{split}-{index:06d}-{n:02d}", image, relational, asked))
        return samples

    counts = write_in_order(root, images, "generating sort-of-clevr", make, progress)
    manifest: dict[str, Any] = {
        "generator": "sort-of-clevr",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "splits": counts,
    }
    if (width, height) != (SIZE, SIZE) or not look.plain:
        manifest.update(width=width, height=height, look=look.to_dict())
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # written last: marks a complete dataset
    return manifest
