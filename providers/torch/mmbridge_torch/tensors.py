"""A dataset prepared once as tensors: letterboxed uint8 images, token ids, targets, and which image each belongs to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageOps

from mmbridge.data.sample import Sample
from mmbridge.errors import DatasetError, ImageError
from mmbridge.eval.metrics.vqa import vqa_accuracy
from mmbridge.extract import normalize_answer
from mmbridge.image import Image
from mmbridge.types import Task

from .vocab import PAD, VERIFY, VQA, Vocab

__all__ = [
    "QUERY_TASKS",
    "VERIFY_ID",
    "VQA_ID",
    "Prepared",
    "allowed_answers",
    "border_colour",
    "letterbox",
    "prepare",
    "soft_targets",
]

#: the tasks a query can be, in the order of their ids in ``Prepared.q_task`` (captions are kept apart)
QUERY_TASKS = (Task.VQA, Task.VERIFY)
VQA_ID, VERIFY_ID = (QUERY_TASKS.index(task) for task in (Task.VQA, Task.VERIFY))


def border_colour(image: PILImage.Image) -> tuple[int, int, int]:
    """The median colour of the picture's outermost pixels: its background, for most pictures."""
    pixels = np.asarray(image.convert("RGB"))
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    r, g, b = np.median(edge, axis=0).astype(int).tolist()
    return r, g, b


def letterbox(image: PILImage.Image, size: int) -> torch.Tensor:
    """Resize to fit ``size`` x ``size`` keeping the aspect ratio: (3, size, size) uint8. The bars
    take the picture's own border colour, so a flat picture's background goes on into them (grey
    bars beside a white background were taken for the background, and the objects lost)."""
    if image.size != (size, size):
        image = image.convert("RGB")
        fill = border_colour(image) if image.size[0] != image.size[1] else (128, 128, 128)
        image = ImageOps.pad(image, (size, size), color=fill)
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
    q_task: torch.Tensor  # (Q,) VQA_ID or VERIFY_ID
    q_target: torch.Tensor  # (Q,) answer index (vqa, -1 if unknown) or label 0/1 (verify)
    q_choices: torch.Tensor  # (Q,A) bool: answers allowed (all True without choices)
    q_type: list[str]  # meta.type, for per-type accuracy
    c_image: torch.Tensor  # (C,) image of each caption sample
    c_tokens: torch.Tensor  # (C,R,T) references, padded; R = most references of any sample
    c_refs: torch.Tensor  # (C,) how many references each has
    per_image: list[list[int]]  # query indices of each image
    # vqa targets as soft scores (each candidate's VQA accuracy, normalized): sparse (query, answer) pairs
    soft_index: torch.Tensor  # (K,2)
    soft_value: torch.Tensor  # (K,)
    image_samples: list[Sample]  # the sample that brought each image
    q_samples: list[Sample]  # the sample of each query
    # auxiliary targets from meta.scene (see scene.py), per image and grid cell; None unless attached
    cell_color: torch.Tensor | None = None  # (N,G) 0 = empty, else 1 + colour index
    cell_shape: torch.Tensor | None = None  # (N,G) 0 = empty, else 1 + shape index
    cell_offset: torch.Tensor | None = None  # (N,G,2) centre within the cell, 0..1
    q_referent: torch.Tensor | None = None  # (Q,) grid cell of the object a query names first, or -1
    # (Q,) grid cell of the one object a vqa answer describes, or of the object a statement names second, or -1
    q_answer_cell: torch.Tensor | None = None


def answer_of(sample: Sample) -> str:
    """The training target of a vqa sample: its most common normalized answer."""
    return Counter(normalize_answer(a) for a in sample.answers or []).most_common(1)[0][0]


def soft_targets(sample: Sample) -> list[tuple[str, float]]:
    """Each distinct answer of a vqa sample with its share of the target: its VQA accuracy against
    all the answers (Teney et al. 2018), normalized to sum to one. One answer: all of it."""
    candidates = sorted({normalize_answer(a) for a in sample.answers or []})
    scores = [vqa_accuracy(c, sample.answers or []) for c in candidates]
    total = sum(scores)
    if total <= 0:  # fewer than three annotators agree on anything: the answers share it evenly
        return [(c, 1 / len(candidates)) for c in candidates]
    return [(c, score / total) for c, score in zip(candidates, scores, strict=True) if score > 0]


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


def prepare(
    samples: list[Sample],
    vocab: Vocab,
    answers: list[str],
    image_size: int,
    max_text: int,
    max_caption: int,
) -> Prepared:
    """Every image decoded once and letterboxed, every query and caption as token ids."""
    answer_index = {a: i for i, a in enumerate(answers)}
    image_ids: dict[str, int] = {}
    pictures: list[torch.Tensor] = []
    first_of: list[Sample] = []  # the sample that brought each image

    def image_id(sample: Sample) -> int:
        key = str(sample.image)
        if key not in image_ids:
            try:  # decoded as inference decodes it: EXIF orientation, transparency, 16-bit
                pictures.append(letterbox(Image(sample.image).pil, image_size))
            except ImageError as exc:
                raise DatasetError(f"sample {sample.id}: {exc}") from None
            first_of.append(sample)
            image_ids[key] = len(pictures) - 1
        return image_ids[key]

    q_image, q_tokens, q_task, q_target, q_choices, q_type = ([] for _ in range(6))
    q_samples: list[Sample] = []
    soft: list[tuple[int, int, float]] = []  # (query, answer, target) of vqa soft scores
    c_image, c_tokens = [], []
    for s in samples:
        if s.task is Task.CAPTION:
            c_image.append(image_id(s))
            c_tokens.append([vocab.encode(r, max_caption, bos_eos=True) for r in s.references or []])
            continue
        q_image.append(image_id(s))
        q_type.append(str(s.meta.get("type", "-")))
        q_samples.append(s)
        answer = answer_of(s) if s.task is Task.VQA else ""
        if s.task is Task.VQA:
            soft += [(len(q_samples) - 1, answer_index[a], t) for a, t in soft_targets(s) if a in answer_index]
        if s.task is Task.VQA:
            q_tokens.append(vocab.encode(s.question or "", max_text, prefix=VQA))
            q_task.append(VQA_ID)
            q_target.append(answer_index.get(answer, -1))
            q_choices.append(allowed_answers(s.choices, answer_index))
        else:
            q_tokens.append(vocab.encode(s.statement or "", max_text, prefix=VERIFY))
            q_task.append(VERIFY_ID)
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
        soft_index=torch.tensor([(q, a) for q, a, _ in soft], dtype=torch.long).view(-1, 2),
        soft_value=torch.tensor([t for _, _, t in soft], dtype=torch.float),
        image_samples=first_of,
        q_samples=q_samples,
    )
