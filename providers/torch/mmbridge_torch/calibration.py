"""Calibrated confidences: one temperature per task, fitted on the validation split after training.

A model's softmax probability is often too sure (or not sure enough) of its answers; a cascade
that trusts it must know how often "90% sure" is right. Temperature scaling (Guo et al. 2017)
divides the logits by a T > 0 fitted to minimize the validation negative log-likelihood: the
answers do not change, only their confidences. The expected calibration error (ECE: the mean gap
between confidence and accuracy over 15 equal-width bins, weighted by bin size) is measured
before and after, and stored with T in the checkpoint's ``info.calibration``; the provider divides
by T when it reports ``confidence``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from mmbridge.eval.stats import expected_calibration_error

from .evaluation import predictions
from .model import Model
from .tensors import VERIFY_ID, VQA_ID, Prepared

__all__ = ["calibrate", "fit_temperature"]


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T minimizing the mean cross-entropy of ``logits / T`` (N,C) against ``targets`` (N,)."""
    log_t = torch.zeros(1, requires_grad=True)
    finite = torch.where(torch.isfinite(logits), logits, torch.full_like(logits, -1e4))
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = F.cross_entropy(finite / log_t.exp(), targets)
        value.backward()
        return value

    optimizer.step(loss)
    t = float(log_t.detach().exp())
    return t if math.isfinite(t) and 1e-2 <= t <= 1e2 else 1.0


def _task(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    t = fit_temperature(logits, targets)
    before, after = (torch.softmax(logits / temp, -1).max(-1) for temp in (1.0, t))
    correct = before.indices == targets
    return {
        "temperature": round(t, 4),
        "ece_before": round(expected_calibration_error(before.values.numpy(), correct.numpy()), 4),
        "ece_after": round(expected_calibration_error(after.values.numpy(), correct.numpy()), 4),
        "n": len(targets),
    }


def calibrate(model: Model, data: Prepared, device: torch.device, bf16: bool = False) -> dict[str, Any]:
    """{task: {"temperature", "ece_before", "ece_after", "n"}} for vqa and verify on ``data``."""
    answers, verify = predictions(model, data, device, bf16=bf16)
    out: dict[str, Any] = {}
    vqa = (data.q_task == VQA_ID) & (data.q_target >= 0)
    if vqa.sum() >= 20:
        out["vqa"] = _task(answers[vqa], data.q_target[vqa])
    ver = data.q_task == VERIFY_ID
    if ver.sum() >= 20:  # a true/false logit l is the two-class logits (0, l)
        two = torch.stack([torch.zeros_like(verify[ver]), verify[ver]], -1)
        out["verify"] = _task(two, data.q_target[ver])
    return out
