"""One training step's loss: each image encoded once, its questions, statements and captions read from it.

vqa learns from soft targets (see tensors.soft_targets), verify from its label, captions by
teacher forcing on a randomly chosen reference; with scene targets attached (scene.py), the
auxiliary per-cell and grounding losses are added; a model with object tokens adds its own
grounding and mixture losses, which need no labels (reader.py).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from .model import GridModel, Model, ObjectModel
from .tensors import VERIFY_ID, VQA_ID, Prepared
from .vocab import PAD, used_columns

__all__ = ["batches", "caption_index", "contrast_loss", "soft_cross_entropy", "step_loss"]


def batches(prepared: Prepared, batch_images: int, rng: random.Random) -> list[list[int]]:
    order = list(range(len(prepared.images)))
    rng.shuffle(order)
    return [order[i : i + batch_images] for i in range(0, len(order), batch_images)]


def caption_index(prepared: Prepared) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(len(prepared.images))]
    for ci, im in enumerate(prepared.c_image.tolist()):
        out[im].append(ci)
    return out


def _soft_rows(data: Prepared, queries: torch.Tensor, answers: int) -> torch.Tensor:
    """(Q,A) the soft vqa targets of ``queries`` (each row sums to one)."""
    position = torch.full((len(data.q_image),), -1, dtype=torch.long)
    position[queries] = torch.arange(len(queries))
    rows = position[data.soft_index[:, 0]]
    keep = rows >= 0
    dense = torch.zeros(len(queries), answers)
    dense[rows[keep], data.soft_index[keep, 1]] = data.soft_value[keep]
    return dense


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution: with one answer, the usual cross-entropy."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def contrast_loss(
    model: ObjectModel, data: Prepared, images: list[int], device: torch.device
) -> tuple[torch.Tensor, dict[str, float]]:
    """The grounding contrast alone (reader.py): the first phase of training with object tokens
    in pictures that differ (loop.py), before anything reads the objects."""
    memory = model.encode_images(data.images[images].to(device))
    q, q_image = _questions(data, images, device)
    loss = model.grounding_loss(memory, q_image, data.q_tokens[q].to(device))
    return loss, {"grounding_loss": loss.item()}


def _questions(data: Prepared, images: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The questions and statements of ``images`` (Q,), and the place of each one's image in them (Q,)."""
    local = {im: i for i, im in enumerate(images)}
    q = torch.tensor([q for im in images for q in data.per_image[im]], dtype=torch.long)
    return q, torch.tensor([local[i] for i in data.q_image[q].tolist()], device=device, dtype=torch.long)


def step_loss(
    model: Model,
    data: Prepared,
    images: list[int],
    captions_of: list[list[int]],
    device: torch.device,
    caption_weight: float,
    rng: random.Random,
    grounding: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    local = {im: i for i, im in enumerate(images)}
    pixels = data.images[images].to(device)
    stats: dict[str, float] = {}
    loss = torch.zeros((), device=device)
    if isinstance(model, GridModel) and model.aux is not None and data.cell_color is not None:
        memory, (color, shape, offset) = model.encode_images(pixels, cells=True)
        t_color, t_shape = data.cell_color[images].to(device), data.cell_shape[images].to(device)
        occupied = t_color > 0
        # most cells are empty: weigh the few occupied ones up so colours and shapes are learnt first
        weight = 1 + 9 * occupied.float().flatten()
        ce_color = F.cross_entropy(color.float().flatten(0, 1), t_color.flatten(), reduction="none")
        ce_shape = F.cross_entropy(shape.float().flatten(0, 1), t_shape.flatten(), reduction="none")
        loss = loss + ((ce_color + ce_shape) * weight).sum() / weight.sum()
        if occupied.any():
            loss = loss + 4 * F.mse_loss(offset.float()[occupied], data.cell_offset[images].to(device)[occupied])
        stats["cell_acc"] = (color.argmax(-1) == t_color)[occupied].float().mean().item() if occupied.any() else 1.0
    else:
        memory = model.encode_images(pixels)
    q, q_image = _questions(data, images, device)
    if len(q):
        reading = model.read(memory, q_image, data.q_tokens[q].to(device))
        state = reading.state
        if grounding and isinstance(model, ObjectModel) and len(images) > 1:  # object tokens: words find their objects
            contrast = model.grounding_loss(memory, q_image, data.q_tokens[q].to(device))
            loss = loss + contrast
            stats["grounding_loss"] = contrast.item()
        task, target = data.q_task[q].to(device), data.q_target[q].to(device)
        if data.q_referent is not None and data.q_answer_cell is not None:
            # grounding: the first reading's first head finds what the text names first, the second
            # reading's first head the object the answer describes (the second hop of "closest to")
            # or the second object a statement names (what "left of" compares against)
            for cells, choice in zip((data.q_referent, data.q_answer_cell), reading.choices, strict=False):
                named = cells[q].to(device)
                if (named >= 0).any() and choice is not None:
                    scores = choice.float()  # (Q,M), the sink first
                    loss = loss + F.cross_entropy(scores[named >= 0], named[named >= 0] + 1)
        vqa = (task == VQA_ID) & (target >= 0)
        if vqa.any():
            logits = model.answer_logits(state[vqa]).float()
            targets = _soft_rows(data, q[vqa.cpu()], logits.shape[-1]).to(device)
            loss = loss + soft_cross_entropy(logits, targets)
            if isinstance(model, ObjectModel) and reading.trace is not None:  # object tokens: hop 2 explains the
                # answer by one object, and hop 1 too where the contrast cannot find the named objects (reader.py)
                mixture = model.reader.mixture_loss(reading.trace, vqa, targets, first_hop=not grounding)
                loss = loss + mixture
                stats["mixture_loss"] = mixture.item()
            stats["vqa_acc"] = (logits.argmax(-1) == target[vqa]).float().mean().item()
        ver = task == VERIFY_ID
        if ver.any():
            logit = model.verify_logit(state[ver]).float()
            loss = loss + F.binary_cross_entropy_with_logits(logit, target[ver].float())
            stats["verify_acc"] = ((logit > 0).long() == target[ver]).float().mean().item()
    caps = [(c, local[im]) for im in images for c in captions_of[im]]
    if caps:
        rows = [data.c_tokens[c, rng.randrange(int(data.c_refs[c]))] for c, _ in caps]
        tokens = torch.stack(rows)
        tokens = used_columns(tokens).to(device)  # trailing padding: no work
        c_image = torch.tensor([i for _, i in caps], device=device)
        logits = model.caption_logits(memory, c_image, tokens[:, :-1]).float()
        cap_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=PAD)
        loss = loss + caption_weight * cap_loss
        stats["caption_loss"] = cap_loss.item()
    return loss, stats
