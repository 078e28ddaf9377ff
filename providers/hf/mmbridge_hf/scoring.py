"""Answers chosen by likelihood: each choice's log-probability as the continuation of the prompt.

A closed question or a statement to verify is never answered by free generation: every choice (for
verify, "yes" and "no") is appended to the prompt, the model reads all of them in one padded pass, and
the sum of each continuation's token log-probabilities decides; their softmax is the confidence. So
the answer is always one of the choices and the confidences sum to 1. Only the positions of the
continuations are projected to the vocabulary (``logits_to_keep``), where the model's forward takes it.
An open answer's confidence is its first token's probability (``FirstStep``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["FirstStep", "continuation_lengths", "score_continuations"]


def continuation_lengths(tokenizer: Any, prompt: str, continuations: Sequence[str]) -> list[int]:
    """How many tokens each continuation adds to ``prompt`` (measured on the joined text, so a merge
    across the boundary is counted with the continuation)."""
    base = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    lengths = []
    for text in continuations:
        joined = tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
        shared = 0
        for a, b in zip(base, joined, strict=False):
            if a != b:
                break
            shared += 1
        lengths.append(max(1, len(joined) - shared))
    return lengths


def _takes_logits_to_keep(model: Any) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


@torch.inference_mode()
def score_continuations(
    model: Any,
    processor: Any,
    texts: Sequence[str],
    images: Sequence[Any],
    lengths: Sequence[int],
    device: torch.device,
) -> tuple[list[float], list[int]]:
    """The summed log-probability of the last ``lengths[i]`` tokens of ``texts[i]`` (each with its
    picture), read in one right-padded pass; and each sequence's token count."""
    processor.tokenizer.padding_side = "right"
    batch = processor(text=list(texts), images=[[image] for image in images], padding=True, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    ends = batch["attention_mask"].sum(dim=1)  # right padding: each sequence's tokens come first
    ids = batch["input_ids"]
    # the logits that predict token t sit at position t - 1
    wanted = sorted({int(end) - n - 1 + k for end, n in zip(ends.tolist(), lengths, strict=True) for k in range(n)})
    extra = {"logits_to_keep": torch.tensor(wanted, device=device)} if _takes_logits_to_keep(model) else {}
    logits = model(**batch, **extra).logits.float()
    column = {p: i for i, p in enumerate(wanted)} if extra else None
    log_probs = torch.log_softmax(logits, dim=-1)
    totals = []
    for row, (end, n) in enumerate(zip(ends.tolist(), lengths, strict=True)):
        total = 0.0
        for t in range(end - n, end):
            at = column[t - 1] if column is not None else t - 1
            total += float(log_probs[row, at, ids[row, t]])
        totals.append(total)
    return totals, ends.tolist()


class FirstStep:
    """A logits processor that keeps the probabilities of the first generated token and changes
    nothing: ``output_scores`` would keep every step's (batch x vocabulary) scores to read one."""

    def __init__(self) -> None:
        self.probabilities: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.probabilities is None:
            self.probabilities = torch.softmax(scores.float(), dim=-1)
        return scores

    def of(self, first_tokens: torch.Tensor) -> torch.Tensor | None:
        """Each row's probability of the token it began with (None when nothing was generated)."""
        if self.probabilities is None or first_tokens.shape[1] == 0:
            return None
        return self.probabilities.gather(1, first_tokens[:, :1]).squeeze(1)
