"""Caption decoding: greedy and beam search. Each caption comes with its mean token probability
(the geometric mean, exp of the mean log-probability of the words and the end mark)."""

from __future__ import annotations

import math

import torch

from .model import Memory, Model
from .vocab import BOS, EOS, PAD, Vocab

__all__ = ["beam_search", "greedy"]


def greedy(
    net: Model, vocab: Vocab, memory: Memory, c_image: torch.Tensor, beam_size: int = 1
) -> list[tuple[str, float]]:
    rows = len(c_image)
    tokens = torch.full((rows, 1), BOS, dtype=torch.long, device=memory.device)
    log_prob = torch.zeros(rows, device=memory.device)
    length = torch.zeros(rows, device=memory.device)
    done = torch.zeros(rows, dtype=torch.bool, device=memory.device)
    for _ in range(net.cfg.max_caption - 1):
        step = torch.log_softmax(net.caption_logits(memory, c_image, tokens)[:, -1].float(), dim=-1)
        best = step.argmax(-1)
        best = torch.where(done, torch.full_like(best, PAD), best)
        log_prob += torch.where(done, 0.0, step.gather(1, best[:, None]).squeeze(1))
        length += (~done).float()
        tokens = torch.cat([tokens, best[:, None]], dim=1)
        done |= best == EOS
        if done.all():
            break
    return [
        (vocab.decode(t.tolist()), math.exp(float(lp / max(n, 1))))
        for t, lp, n in zip(tokens, log_prob, length, strict=True)
    ]


def beam_search(
    net: Model, vocab: Vocab, memory: Memory, c_image: torch.Tensor, beam_size: int = 3
) -> list[tuple[str, float]]:
    """Keeps the ``beam_size`` best prefixes per caption; the winner has the best mean log-probability."""
    rows, device = len(c_image), memory.device
    seqs = torch.full((rows, 1, 1), BOS, dtype=torch.long, device=device)  # (C,K,T)
    scores = torch.zeros(rows, 1, device=device)  # summed log-probabilities
    lengths = torch.zeros(rows, 1, device=device)
    finished = torch.zeros(rows, 1, dtype=torch.bool, device=device)
    for _ in range(net.cfg.max_caption - 1):
        k = seqs.shape[1]
        logits = net.caption_logits(memory, c_image.repeat_interleave(k), seqs.view(rows * k, -1))[:, -1].float()
        step = torch.log_softmax(logits, dim=-1).view(rows, k, -1)  # (C,K,V)
        # a finished beam may only continue with padding, at no cost
        pad_only = torch.full_like(step[0, 0], -math.inf)
        pad_only[PAD] = 0.0
        step = torch.where(finished[..., None], pad_only, step)
        top, index = (scores[..., None] + step).view(rows, -1).topk(min(beam_size, k * step.shape[-1]), dim=-1)
        beam, token = index // step.shape[-1], index % step.shape[-1]
        pick = torch.arange(rows, device=device)[:, None]
        lengths = lengths[pick, beam] + (~finished[pick, beam]).float()
        finished = finished[pick, beam] | (token == EOS)
        seqs = torch.cat([seqs[pick, beam], token[..., None]], dim=-1)
        scores = top
        if finished.all():
            break
    mean = scores / lengths.clamp(min=1)
    best = mean.argmax(-1)
    out = []
    for row in range(rows):
        b = int(best[row])
        out.append((vocab.decode(seqs[row, b].tolist()), math.exp(float(mean[row, b]))))
    return out
