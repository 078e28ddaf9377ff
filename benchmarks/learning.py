"""Does the local model learn from what a user has? Train from scratch, with no scene supervision,
for a fixed budget on this CPU, and score a fresh test split beside the seed's baseline design.

Targets (issue 13), each after at most 15 minutes of training:
  builtin:shapes, no scene supervision: vqa >= 97%, relational >= 94%, verify >= 97%;
  builtin:sort-of-clevr (no scenes in its rows): non-relational >= 99%, relational >= 94%;
  on every dataset at least the baseline's accuracy at equal training time.
The baseline is the seed's design: a CNN and an LSTM, their vectors concatenated into an MLP,
trained here by the same loop on the same tensors. Ours is `mmbridge train --no-scene` (the
product's own trainer). Both report validation accuracy against training minutes, and
questions per second.

Run: python benchmarks/local_model.py --learning [--minutes 15] [--datasets shapes sort-of-clevr]
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from mmbridge_torch.checkpoint import load_checkpoint
from mmbridge_torch.evaluation import evaluate_prepared
from mmbridge_torch.tensors import prepare
from mmbridge_torch.train import TrainOptions, _vocabularies, train
from mmbridge_torch.vocab import PAD
from torch import nn

from mmbridge.data import load_dataset
from mmbridge.data.jsonl import write_jsonl

DATASETS = {
    "shapes": ("builtin:shapes?split={}&images=10000&seed=11", 64),
    "sort-of-clevr": ("builtin:sort-of-clevr?split={}&images=10000&seed=11", 75),
}
TARGETS = {
    "shapes": {"vqa_acc": 0.97, "relational": 0.94, "verify_acc": 0.97},
    "sort-of-clevr": {"non-relational": 0.99, "relational": 0.94},
}


class Baseline(nn.Module):
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


def _split(spec: str, split: str, cache: Path) -> list:
    return [s for s in load_dataset(spec.format(split), cache_dir=cache) if s.task.value != "caption"]


def train_baseline(data: Any, val: Any, vocab: int, answers: int, minutes: float) -> tuple[nn.Module, list, float]:
    """The same warmup + cosine schedule and batch as ours; returns the model, (minutes, report)s, questions/s."""
    torch.manual_seed(0)
    model = Baseline(vocab, answers)
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
            vqa, ver = (task == 0) & (target >= 0), task == 1
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


def _figures(report: dict[str, Any]) -> dict[str, float]:
    out = {k: v for k, v in report.items() if k in ("vqa_acc", "verify_acc")}
    out.update(report.get("vqa_by_type", {}))
    return out


def run(name: str, minutes: float) -> None:
    spec, size = DATASETS[name]
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        train_set, val_set, test_set = (_split(spec, s, cache) for s in ("train", "val", "test"))
        # both models train on the same rows: the questions and statements (no caption head's cost)
        files = {}
        for split, rows in (("train", train_set), ("val", val_set)):
            files[split] = cache / f"{split}.jsonl"
            write_jsonl(rows, files[split])
        vocab, answers, _ = _vocabularies(train_set, 3129)
        prepared = [prepare(s, vocab, answers, size, 24, 8) for s in (train_set, val_set, test_set)]
        print(f"{name}: {len(train_set)} training questions, budget {minutes:g} min each", flush=True)
        out = cache / "ours"
        options = TrainOptions(
            data=str(files["train"]),
            val=str(files["val"]),
            out=out,
            max_minutes=minutes,
            epochs=10_000,
            cache_dir=cache,
            scene=False,
            validate_every_s=60,
            model={"image_size": size},
        )
        speeds: list[float] = []
        train(options, on_update=lambda e: speeds.append(e["images_per_s"]) if e["event"] == "step" else None)
        ours = load_checkpoint(out / "best")
        history = ours.info.get("history", [])
        ours_test = prepare(test_set, ours.vocab, ours.answers, size, ours.model.cfg.max_text, 8)
        ours_report = _figures(evaluate_prepared(ours.model, ours_test, torch.device("cpu")))
        per_image = len(prepared[0].q_image) / max(len(prepared[0].images), 1)
        ours_qps = statistics.median(speeds[len(speeds) // 2 :]) * per_image if speeds else 0.0
        model, base_history, base_qps = train_baseline(prepared[0], prepared[1], len(vocab), len(answers), minutes)
        base_report = _figures(evaluate_prepared(model, prepared[2], torch.device("cpu")))
    print(f"  ours: mmbridge train --no-scene (scene help not used), image tokens: {ours.model.cfg.image_tokens}")
    mine = [(round(h["elapsed_s"] / 60, 1), h.get("vqa_acc")) for h in history]
    print(f"  validation vqa accuracy by training minute: ours {mine}")
    print(f"  baseline {[(round(m, 1), round(r.get('vqa_acc', 0), 3)) for m, r in base_history]}")
    print(f"  questions/s: ours ~{ours_qps:.0f}, baseline {base_qps:.0f}")
    for key in sorted(set(ours_report) | set(TARGETS[name])):
        goal = TARGETS[name].get(key)
        ours_value, theirs = ours_report.get(key, float("nan")), base_report.get(key, float("nan"))
        verdict = "" if goal is None else f"  target >= {goal:.0%}: {'PASS' if ours_value >= goal else 'FAIL'}"
        print(f"  {key:16s} ours {ours_value:6.1%}  baseline {theirs:6.1%}{verdict}")
    at_least = all(ours_report.get(k, 0) >= v for k, v in base_report.items())
    print(f"  at least the baseline on every figure: {'PASS' if at_least else 'FAIL'}")


def main(minutes: float, datasets: list[str]) -> None:
    for name in datasets:
        run(name, minutes)
