"""The two designs the local model is measured beside in benchmarks/learning.py, trained by one
loop on the same tensors as ours:

- ``CnnLstm``: the seed's design, a CNN vector and an LSTM vector concatenated into an MLP;
- ``Film``: a small FiLM network (Perez et al. 2018): a CNN stem with coordinate channels, a GRU
  reads the question, and residual blocks whose batch norm is scaled and shifted per question,
  then a max-pooled classifier. Question-conditioned features with coordinates are the known
  ingredients for relational questions on pixels.

Both offer what evaluation.evaluate_prepared calls: encode_images, fuse, answer_logits, verify_logit.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import torch
import torch.nn.functional as F
from mmbridge_torch.evaluation import evaluate_prepared
from mmbridge_torch.tensors import VERIFY_ID, VQA_ID
from mmbridge_torch.vocab import PAD
from torch import nn

__all__ = ["BASELINES", "CnnLstm", "Film", "train_baseline"]


class CnnLstm(nn.Module):
    """The seed's design: CNN vector + LSTM vector, concatenated, then an MLP per task."""

    def __init__(self, vocab: int, answers: int, width: int = 32, hidden: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((3, width), (width, width), (width, width), (width, width)):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.cnn = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())  # (B, width*16)
        self.embed = nn.Embedding(vocab, 64, padding_idx=PAD)
        self.lstm = nn.LSTM(64, hidden, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width * 16 + hidden, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
        self.answer = nn.Linear(256, answers)
        self.verify = nn.Linear(256, 1)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(images.float() / 255.0 - 0.5)

    def fuse(self, memory: torch.Tensor, q_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(tokens))
        last = out[torch.arange(len(tokens)), (tokens != PAD).sum(1).clamp(min=1) - 1]
        return self.mlp(torch.cat([memory[q_image], last], -1))

    def answer_logits(self, state: torch.Tensor) -> torch.Tensor:
        return self.answer(state)

    def verify_logit(self, state: torch.Tensor) -> torch.Tensor:
        return self.verify(state).squeeze(-1)


def _coords(x: torch.Tensor) -> torch.Tensor:
    """x (B,C,H,W) with two more channels: its x and y in [-1, 1]."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([x, xs, ys], 1)


class _FilmBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(width + 2, width, 1)
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width, affine=False)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.inp(_coords(x)))  # (Q,W,h,w)
        z = self.norm(self.conv(y)) * (1 + gamma[..., None, None]) + beta[..., None, None]
        return y + F.relu(z)


class Film(nn.Module):
    """A small FiLM network: the stem's features (question independent, once per image), then
    per question four FiLM blocks on an S/8 grid, max-pooled into an MLP per task."""

    def __init__(self, vocab: int, answers: int, width: int = 64, hidden: int = 128, blocks: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(5, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
        )  # fmt: skip
        self.embed = nn.Embedding(vocab, 64, padding_idx=PAD)
        self.gru = nn.GRU(64, hidden, batch_first=True)
        self.film = nn.Linear(hidden, blocks * 2 * width)
        self.blocks = nn.ModuleList(_FilmBlock(width) for _ in range(blocks))
        self.head = nn.Sequential(nn.Conv2d(width + 2, 256, 1), nn.ReLU())
        self.mlp = nn.Sequential(nn.Linear(256, 256), nn.ReLU())
        self.answer = nn.Linear(256, answers)
        self.verify = nn.Linear(256, 1)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.stem(_coords(images.float() / 255.0 - 0.5))  # (B,W,S/8,S/8)

    def fuse(self, memory: torch.Tensor, q_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.embed(tokens))
        last = out[torch.arange(len(tokens)), (tokens != PAD).sum(1).clamp(min=1) - 1]  # (Q,hidden)
        params = self.film(last).view(len(tokens), len(self.blocks), 2, -1)  # (Q,blocks,2,W)
        x = memory[q_image]
        for k, block in enumerate(self.blocks):
            x = block(x, params[:, k, 0], params[:, k, 1])
        return self.mlp(self.head(_coords(x)).amax((2, 3)))

    def answer_logits(self, state: torch.Tensor) -> torch.Tensor:
        return self.answer(state)

    def verify_logit(self, state: torch.Tensor) -> torch.Tensor:
        return self.verify(state).squeeze(-1)


BASELINES = {"cnn+lstm": CnnLstm, "film": Film}


def train_baseline(
    name: str, data: Any, val: Any, vocab: int, answers: int, minutes: float
) -> tuple[nn.Module, list, float]:
    """The same warmup + cosine schedule and 32 images a step as ours; returns the model,
    (minutes, validation report) pairs, and questions/s over the whole run."""
    torch.manual_seed(0)
    model = BASELINES[name](vocab, answers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    rng, budget, history = random.Random(0), minutes * 60, []
    start, last, seen, step = time.monotonic(), time.monotonic(), 0, 0
    while time.monotonic() - start < budget:
        order = list(range(len(data.images)))
        rng.shuffle(order)
        for i in range(0, len(order), 32):
            progress = (time.monotonic() - start) / budget
            if progress >= 1:
                break
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * progress))
            images = order[i : i + 32]
            local = {im: k for k, im in enumerate(images)}
            q = torch.tensor([x for im in images for x in data.per_image[im]])
            state = model.fuse(
                model.encode_images(data.images[images]),
                torch.tensor([local[k] for k in data.q_image[q].tolist()]),
                data.q_tokens[q],
            )
            task, target = data.q_task[q], data.q_target[q]
            vqa, ver = (task == VQA_ID) & (target >= 0), task == VERIFY_ID
            loss = torch.zeros(())
            if vqa.any():
                loss = loss + F.cross_entropy(model.answer_logits(state[vqa]), target[vqa])
            if ver.any():
                loss = loss + F.binary_cross_entropy_with_logits(model.verify_logit(state[ver]), target[ver].float())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step, seen = step + 1, seen + len(q)
            if time.monotonic() - last >= 60:
                history.append(((time.monotonic() - start) / 60, evaluate_prepared(model, val, torch.device("cpu"))))
                last = time.monotonic()
    history.append(((time.monotonic() - start) / 60, evaluate_prepared(model, val, torch.device("cpu"))))
    return model, history, seen / (time.monotonic() - start)
