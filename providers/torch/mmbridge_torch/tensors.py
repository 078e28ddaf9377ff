"""A dataset prepared once as tensors: letterboxed uint8 images, token ids, targets, and which image each belongs to."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image as PILImage
from PIL import ImageOps

from mmbridge.data.sample import Sample
from mmbridge.errors import DatasetError, ImageError
from mmbridge.extract import normalize_answer
from mmbridge.image import Image
from mmbridge.types import Task

from .vocab import PAD, VERIFY, VQA, Vocab

__all__ = ["Prepared", "allowed_answers", "letterbox", "prepare"]


def letterbox(image: PILImage.Image, size: int) -> torch.Tensor:
    """Resize to fit ``size`` x ``size`` keeping the aspect ratio, pad with grey: (3, size, size) uint8."""
    if image.size != (size, size):
        image = ImageOps.pad(image.convert("RGB"), (size, size), color=(128, 128, 128))
    return (
        torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
        .view(size, size, 3)
        .permute(2, 0, 1)
    )


@dataclass
class Prepared:
    images: torch.Tensor  # (N,3,S,S) uint8
    q_image: torch.Tensor  # (Q,) image of each query (vqa and verify)
    q_tokens: torch.Tensor  # (Q,L) task token first
    q_task: torch.Tensor  # (Q,) 0 = vqa, 1 = verify
    q_target: torch.Tensor  # (Q,) answer index (vqa, -1 if unknown) or label 0/1 (verify)
    q_choices: torch.Tensor  # (Q,A) bool: answers allowed (all True without choices)
    q_type: list[str]  # meta.type, for per-type accuracy
    c_image: torch.Tensor  # (C,) image of each caption sample
    c_tokens: torch.Tensor  # (C,R,T) references, padded; R = most references of any sample
    c_refs: torch.Tensor  # (C,) how many references each has
    per_image: list[list[int]]  # query indices of each image
    # auxiliary targets from meta.scene, per image and grid cell (None when the data has no scenes)
    cell_color: torch.Tensor | None = None  # (N,G) 0 = empty, else 1 + colour index
    cell_shape: torch.Tensor | None = None  # (N,G) 0 = empty, else 1 + shape index
    cell_offset: torch.Tensor | None = None  # (N,G,2) centre within the cell, 0..1
    q_referent: torch.Tensor | None = None  # (Q,) grid cell of the object a query names first, or -1
    # (Q,) grid cell of the one object a vqa answer describes, or of the object a statement names second, or -1
    q_answer_cell: torch.Tensor | None = None


def answer_of(sample: Sample) -> str:
    """The training target of a vqa sample: its most common normalized answer."""
    return Counter(normalize_answer(a) for a in sample.answers or []).most_common(1)[0][0]


def allowed_answers(choices: Sequence[str] | None, answer_index: dict[str, int]) -> torch.Tensor:
    """(A,) bool: the answers a query may get. All of them without choices; with choices only those
    seen in training (none at all when no choice was ever an answer)."""
    if not choices:
        return torch.ones(len(answer_index), dtype=torch.bool)
    mask = torch.zeros(len(answer_index), dtype=torch.bool)
    for choice in choices:
        known = answer_index.get(normalize_answer(choice))
        if known is not None:
            mask[known] = True
    return mask


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
    grid = image_size // 8
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
    grid = image_size // 8
    color, shape = [0] * grid * grid, [0] * grid * grid
    offset = [[0.5, 0.5] for _ in range(grid * grid)]
    for o in scene["objects"]:
        x, y, cell = _place(o, scene, image_size)
        cx, cy = cell % grid, cell // grid
        if o["color"] in colors and o["shape"] in shapes:
            color[cell], shape[cell] = colors.index(o["color"]) + 1, shapes.index(o["shape"]) + 1
            offset[cell] = [x / 8 - cx, y / 8 - cy]
    return color, shape, offset


def prepare(
    samples: list[Sample],
    vocab: Vocab,
    answers: list[str],
    image_size: int,
    max_text: int,
    max_caption: int,
    scene_names: tuple[list[str], list[str]] | None = None,
) -> Prepared:
    answer_index = {a: i for i, a in enumerate(answers)}
    image_ids: dict[str, int] = {}
    pictures: list[torch.Tensor] = []
    cells: list[tuple[list[int], list[int], list[list[float]]]] = []

    def image_id(sample: Sample) -> int:
        key = str(sample.image)
        if key not in image_ids:
            try:  # decoded as inference decodes it: EXIF orientation, transparency, 16-bit
                pictures.append(letterbox(Image(sample.image).pil, image_size))
            except ImageError as exc:
                raise DatasetError(f"sample {sample.id}: {exc}") from None
            if scene_names is not None:
                cells.append(_cell_targets(sample.meta["scene"], *scene_names, image_size))
            image_ids[key] = len(pictures) - 1
        return image_ids[key]

    q_image, q_tokens, q_task, q_target, q_choices, q_type, q_referent, q_answer_cell = ([] for _ in range(8))
    c_image, c_tokens = [], []
    for s in samples:
        if s.task is Task.CAPTION:
            c_image.append(image_id(s))
            c_tokens.append([vocab.encode(r, max_caption, bos_eos=True) for r in s.references or []])
            continue
        q_image.append(image_id(s))
        q_type.append(str(s.meta.get("type", "-")))
        answer = answer_of(s) if s.task is Task.VQA else ""
        if scene_names is not None:
            scene = s.meta["scene"]
            q_referent.append(referent(s.question or s.statement or "", scene, *scene_names, image_size))
            # the second reading finds what a vqa answer describes, or the second object a statement names
            if s.task is Task.VQA:
                q_answer_cell.append(answer_referent(answer, scene, *scene_names, image_size))
            else:
                q_answer_cell.append(referent(s.statement or "", scene, *scene_names, image_size, nth=1))
        if s.task is Task.VQA:
            q_tokens.append(vocab.encode(s.question or "", max_text, prefix=VQA))
            q_task.append(0)
            q_target.append(answer_index.get(answer, -1))
            q_choices.append(allowed_answers(s.choices, answer_index))
        else:
            q_tokens.append(vocab.encode(s.statement or "", max_text, prefix=VERIFY))
            q_task.append(1)
            q_target.append(int(bool(s.label)))
            q_choices.append(allowed_answers(None, answer_index))
    refs = max((len(c) for c in c_tokens), default=1)
    padded = [c + [[PAD] * max_caption] * (refs - len(c)) for c in c_tokens]
    per_image: list[list[int]] = [[] for _ in pictures]
    for qi, im in enumerate(q_image):
        per_image[im].append(qi)
    return Prepared(
        images=torch.stack(pictures) if pictures else torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8),
        q_image=torch.tensor(q_image, dtype=torch.long),
        q_tokens=torch.tensor(q_tokens, dtype=torch.long).view(-1, max_text),
        q_task=torch.tensor(q_task, dtype=torch.long),
        q_target=torch.tensor(q_target, dtype=torch.long),
        q_choices=torch.stack(q_choices) if q_choices else torch.zeros(0, len(answers), dtype=torch.bool),
        q_type=q_type,
        c_image=torch.tensor(c_image, dtype=torch.long),
        c_tokens=torch.tensor(padded, dtype=torch.long).view(-1, refs, max_caption),
        c_refs=torch.tensor([len(c) for c in c_tokens], dtype=torch.long),
        per_image=per_image,
        cell_color=torch.tensor([c[0] for c in cells], dtype=torch.long) if cells else None,
        cell_shape=torch.tensor([c[1] for c in cells], dtype=torch.long) if cells else None,
        cell_offset=torch.tensor([c[2] for c in cells], dtype=torch.float) if cells else None,
        q_referent=torch.tensor(q_referent, dtype=torch.long) if scene_names is not None else None,
        q_answer_cell=torch.tensor(q_answer_cell, dtype=torch.long) if scene_names is not None else None,
    )
