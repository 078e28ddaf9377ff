"""Validation during training: accuracy on a prepared split, the caption loss, and which checkpoint is best."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .device import autocast
from .model import Model
from .tensors import VERIFY_ID, VQA_ID, Prepared
from .vocab import PAD

__all__ = ["evaluate_prepared", "predictions", "selection_score"]


@torch.no_grad()
def predictions(
    model: Model, data: Prepared, device: torch.device, batch_images: int = 128, bf16: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every query's answer logits (Q,A), choices respected (others -inf), and verify logit (Q,),
    on the CPU. The model is in eval mode meanwhile, and back in the mode it was in after."""
    was_training = model.training
    model.eval()
    answers = torch.full((len(data.q_image), data.q_choices.shape[1]), -math.inf)
    verify = torch.zeros(len(data.q_image))
    for start in range(0, len(data.images), batch_images):
        images = list(range(start, min(start + batch_images, len(data.images))))
        queries = [q for im in images for q in data.per_image[im]]
        if not queries:
            continue
        q = torch.tensor(queries)
        with autocast(device, bf16):
            memory = model.encode_images(data.images[images].to(device))
            state = model.fuse(memory, data.q_image[q].to(device) - start, data.q_tokens[q].to(device))
            logits = model.answer_logits(state).float().masked_fill(~data.q_choices[q].to(device), -math.inf)
            answers[q] = logits.cpu()
            verify[q] = model.verify_logit(state).float().cpu()
    model.train(was_training)
    return answers, verify


@torch.no_grad()
def evaluate_prepared(
    model: Model, data: Prepared, device: torch.device, batch_images: int = 128, bf16: bool = False
) -> dict[str, Any]:
    """vqa and verify accuracy (overall and per meta.type) of a prepared split, choices respected,
    and the caption loss when it has captions."""
    answers, verify = predictions(model, data, device, batch_images, bf16)
    right_answer = answers.argmax(-1) == data.q_target if len(answers) else torch.zeros(0, dtype=torch.bool)
    correct = torch.where(data.q_task == VQA_ID, right_answer, (verify > 0).long() == data.q_target)
    report: dict[str, Any] = {}
    if len(data.c_image):
        was_training = model.training
        model.eval()
        report["caption_loss"] = _caption_loss(model, data, device, batch_images, bf16)
        model.train(was_training)
    for task_id, name in ((VQA_ID, "vqa"), (VERIFY_ID, "verify")):
        mask = data.q_task == task_id
        if mask.any():
            report[f"{name}_acc"] = correct[mask].float().mean().item()
            types = sorted({data.q_type[i] for i in mask.nonzero().flatten().tolist()})
            report[f"{name}_by_type"] = {
                t: correct[[i for i in mask.nonzero().flatten().tolist() if data.q_type[i] == t]].float().mean().item()
                for t in types
            }
    return report


def _caption_loss(model: Model, data: Prepared, device: torch.device, batch_images: int, bf16: bool) -> float:
    """Teacher-forced cross-entropy of each caption sample's first reference, averaged over words."""
    total, words = 0.0, 0
    for start in range(0, len(data.c_image), batch_images):
        rows = torch.arange(start, min(start + batch_images, len(data.c_image)))
        images = sorted(set(data.c_image[rows].tolist()))
        local = {im: i for i, im in enumerate(images)}
        tokens = data.c_tokens[rows, 0].to(device)
        with autocast(device, bf16):
            memory = model.encode_images(data.images[images].to(device))
            c_image = torch.tensor([local[i] for i in data.c_image[rows].tolist()], device=device)
            logits = model.caption_logits(memory, c_image, tokens[:, :-1]).float()
        target = tokens[:, 1:].reshape(-1)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target, ignore_index=PAD, reduction="sum").item()
        words += int((target != PAD).sum())
    return total / max(words, 1)


def selection_score(report: dict[str, Any]) -> float:
    """What best/ maximizes: vqa plus verify accuracy, or for caption-only data minus the caption loss."""
    if "vqa_acc" in report or "verify_acc" in report:
        return report.get("vqa_acc", 0.0) + report.get("verify_acc", 0.0)
    return -report.get("caption_loss", 0.0)
