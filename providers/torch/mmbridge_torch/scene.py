"""Scene supervision: extra training targets for data whose samples carry ``meta.scene``.

Only the built-in shapes data carries scenes (objects with colour, shape and centre); a user's
data does not, and the generic path (tensors.prepare, train's losses on answers alone) never
looks at them. When every training sample has a scene and training is not told ``--no-scene``,
:func:`attach` adds, per image and grid cell, what object is centred there and where, and per
query the grid cell of the object it names first (and of the object its answer describes, or a
statement names second). train.py turns these into auxiliary losses; the model never sees scenes
when it answers.
"""

from __future__ import annotations

import re

import torch

from mmbridge.data.sample import Sample
from mmbridge.errors import DatasetError
from mmbridge.types import Task

from .tensors import Prepared, answer_of

__all__ = ["answer_referent", "attach", "referent", "scene_vocab"]


def _scene_problem(scene: object) -> str | None:
    """What is wrong with a meta.scene, or None when the auxiliary losses can read it."""
    if not isinstance(scene, dict) or not isinstance(scene.get("objects"), list):
        return "it must be an object with an 'objects' list"
    if not all(isinstance(scene.get(k), (int, float)) and scene[k] > 0 for k in ("width", "height")):
        return "it needs a positive width and height"
    for o in scene["objects"]:
        if not (isinstance(o, dict) and isinstance(o.get("color"), str) and isinstance(o.get("shape"), str)):
            return "each object needs a colour and a shape (strings)"
        if not all(isinstance(o.get(k), (int, float)) and not isinstance(o.get(k), bool) for k in ("x", "y")):
            return "each object needs a numeric x and y"
    return None


def scene_vocab(samples: list[Sample]) -> tuple[list[str], list[str]] | None:
    """Colours and shapes of every meta.scene, or None when some sample has no scene.

    A scene that is there but malformed is a DatasetError, not a silent loss of supervision.
    """
    scenes = [s.meta.get("scene") for s in samples]
    for sample, scene in zip(samples, scenes, strict=True):
        problem = _scene_problem(scene) if scene is not None else None
        if problem:
            raise DatasetError(f"sample {sample.id}: meta.scene is malformed ({problem}); fix it or leave it out")
    if not scenes or any(sc is None for sc in scenes):
        return None
    colors = sorted({o["color"] for sc in scenes for o in sc["objects"]})  # type: ignore[index]
    shapes = sorted({o["shape"] for sc in scenes for o in sc["objects"]})  # type: ignore[index]
    return colors, shapes


def _place(o: dict, scene: dict, image_size: int) -> tuple[float, float, int]:
    """An object's centre in the letterboxed image (pixels) and its grid cell."""
    grid = -(-image_size // 8)  # the encoder's cells a side
    width, height = scene["width"], scene["height"]
    scale = image_size / max(width, height)  # letterboxing: uniform scale, then centred
    x = o["x"] * scale + (image_size - width * scale) / 2
    y = o["y"] * scale + (image_size - height * scale) / 2
    return x, y, min(int(y // 8), grid - 1) * grid + min(int(x // 8), grid - 1)


def referent(text: str, scene: dict, colors: list[str], shapes: list[str], image_size: int, nth: int = 0) -> int:
    """The grid cell of the ``nth`` object a question or statement names (by its colour, or by a shape
    only one object has), or -1. Only a training signal: it teaches attention to find what is named."""
    words = re.findall(r"[a-z]+", text.lower())
    names = [
        w if w in colors else w.rstrip("s")
        for i, w in enumerate(words)
        if w in colors or (w.rstrip("s") in shapes and not (i and words[i - 1] in colors))  # "red circle": one name
    ]
    return answer_referent(names[nth], scene, colors, shapes, image_size) if len(names) > nth else -1


def answer_referent(answer: str, scene: dict, colors: list[str], shapes: list[str], image_size: int) -> int:
    """The grid cell of the one object an answer describes (its colour, or a shape only it has),
    or -1: for "what colour is the object closest to the red object?", the closest object."""
    key = "color" if answer in colors else "shape" if answer in shapes else None
    named = [o for o in scene["objects"] if key and o[key] == answer]
    return _place(named[0], scene, image_size)[2] if len(named) == 1 else -1


def _cell_targets(
    scene: dict, colors: list[str], shapes: list[str], image_size: int
) -> tuple[list[int], list[int], list[list[float]]]:
    grid = -(-image_size // 8)
    color, shape = [0] * grid * grid, [0] * grid * grid
    offset = [[0.5, 0.5] for _ in range(grid * grid)]
    for o in scene["objects"]:
        x, y, cell = _place(o, scene, image_size)
        cx, cy = cell % grid, cell // grid
        if o["color"] in colors and o["shape"] in shapes:
            color[cell], shape[cell] = colors.index(o["color"]) + 1, shapes.index(o["shape"]) + 1
            offset[cell] = [x / 8 - cx, y / 8 - cy]
    return color, shape, offset


def attach(data: Prepared, names: tuple[list[str], list[str]], image_size: int) -> Prepared:
    """``data`` with the scene targets of its images and queries filled in."""
    cells = [_cell_targets(s.meta["scene"], *names, image_size) for s in data.image_samples]
    first, second = [], []
    for s in data.q_samples:
        scene, text = s.meta["scene"], s.question or s.statement or ""
        first.append(referent(text, scene, *names, image_size))
        # the second reading finds what a vqa answer describes, or the second object a statement names
        if s.task is Task.VQA:
            second.append(answer_referent(answer_of(s), scene, *names, image_size))
        else:
            second.append(referent(text, scene, *names, image_size, nth=1))
    data.cell_color = torch.tensor([c[0] for c in cells], dtype=torch.long)
    data.cell_shape = torch.tensor([c[1] for c in cells], dtype=torch.long)
    data.cell_offset = torch.tensor([c[2] for c in cells], dtype=torch.float)
    data.q_referent = torch.tensor(first, dtype=torch.long)
    data.q_answer_cell = torch.tensor(second, dtype=torch.long)
    return data
