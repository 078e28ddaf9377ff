"""Training: any dataset in the project's format, a mix of vqa, verify and caption, on CPU or CUDA.

Fast on this CPU by construction: data prepared once as tensors, each image encoded once for
all of its questions, channels_last convolutions, bf16 autocast, warmup + cosine learning rate.
Every validation writes ``last/`` (with the optimizer, for ``--resume``) and, when it improves,
``best/``, both atomically.

When samples carry their scene (``meta.scene``), two auxiliary losses use it: per grid cell, what
object is centred there and where; and per question or statement, which object it names first
(its colour, or a shape only one object has), which the first head of the first cross-attention
is taught to find, and, for the first head of the second, the one object a vqa answer describes
or the object a statement names second.
The model never sees scenes when it answers.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mmbridge.data import load_dataset
from mmbridge.data.sample import Sample
from mmbridge.errors import ConfigError, DatasetError
from mmbridge.types import Task

from .backbones import cached_features, load_trunk_weights, trunk_identity
from .checkpoint import check_resumable, load_checkpoint, load_optimizer, save_checkpoint
from .model import FusedModel, ModelConfig, cosine_lr
from .scene import attach, scene_vocab
from .tensors import Prepared, answer_of, prepare
from .vocab import PAD, Vocab

__all__ = ["TrainOptions", "evaluate_prepared", "load_samples", "pick_device", "preflight", "train"]


@dataclass
class TrainOptions:
    data: str
    out: Path
    val: str | None = None
    epochs: int = 30
    max_minutes: float | None = None
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    batch_images: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    caption_weight: float = 0.5
    validate_every_s: float = 60.0
    cache_dir: Path = Path(".mmbridge/cache")
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    #: learn from meta.scene when every training sample carries one (see scene.py); False: answers only
    scene: bool = True
    #: the most frequent answers kept as classes (VQA v2's usual 3,129); the rest are not trained on
    max_answers: int = 3129
    #: with model={"backbone": ...}: "DEFAULT" (torchvision's, downloaded here) or a state-dict file
    backbone_weights: str | None = None


def pick_device(name: str) -> torch.device:
    """The device ``name`` names (``auto``: CUDA when there is one, else the CPU), checked to exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"device {name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r}: no CUDA device is visible; use auto or cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r}: only cuda:0..cuda:{count - 1} exist here")
        return device
    raise ConfigError(f"device {name!r}: the local model runs on cpu or cuda, not {device.type}; use auto")


def bf16_helps(device: torch.device) -> bool:
    """bf16 autocast: on CUDA, and on CPUs with AMX or AVX512-BF16 (2-3x faster there; on an AVX2-only
    CPU it is ~13x slower than float32, measured)."""
    if device.type == "cuda":
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast(device: torch.device, enabled: bool) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _vocabularies(samples: list[Sample], max_answers: int) -> tuple[Vocab, list[str], float]:
    """Words, the ``max_answers`` most frequent answers, and the share of vqa samples whose answer
    is among them."""
    texts = [s.question or s.statement or "" for s in samples] + [r for s in samples for r in s.references or []]
    answers = Counter(answer_of(s) for s in samples if s.task is Task.VQA and s.answers)
    kept = sorted(answers, key=lambda a: (-answers[a], a))[:max_answers]
    covered = sum(answers[a] for a in kept) / max(sum(answers.values()), 1)
    return Vocab.build(texts), kept, covered


def _batches(prepared: Prepared, batch_images: int, rng: random.Random) -> list[list[int]]:
    order = list(range(len(prepared.images)))
    rng.shuffle(order)
    return [order[i : i + batch_images] for i in range(0, len(order), batch_images)]


def _caption_index(prepared: Prepared) -> list[list[int]]:
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


def _step_loss(
    model: FusedModel,
    data: Prepared,
    images: list[int],
    captions_of: list[list[int]],
    device: torch.device,
    caption_weight: float,
    rng: random.Random,
) -> tuple[torch.Tensor, dict[str, float]]:
    local = {im: i for i, im in enumerate(images)}
    pixels = data.images[images].to(device)
    stats: dict[str, float] = {}
    loss = torch.zeros((), device=device)
    if model.aux is not None and data.cell_color is not None:
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
    queries = [q for im in images for q in data.per_image[im]]
    if queries:
        q = torch.tensor(queries)
        q_image = torch.tensor([local[i] for i in data.q_image[q].tolist()], device=device)
        state = model.fuse(memory, q_image, data.q_tokens[q].to(device))
        task, target = data.q_task[q].to(device), data.q_target[q].to(device)
        if data.q_referent is not None and data.q_answer_cell is not None:
            # grounding: the first reading's first head finds what the text names first, the second
            # reading's first head the object the answer describes (the second hop of "closest to")
            # or the second object a statement names (what "left of" compares against)
            for layer, cells in enumerate((data.q_referent, data.q_answer_cell)[: len(model.fusion)]):
                named = cells[q].to(device)
                if (named >= 0).any():
                    scores = model.fusion[layer].cross.choice_scores[:, 0].float()  # (Q,M), the sink first
                    loss = loss + F.cross_entropy(scores[named >= 0], named[named >= 0] + 1)
        vqa = (task == 0) & (target >= 0)
        if vqa.any():
            logits = model.answer_logits(state[vqa]).float()
            loss = loss + soft_cross_entropy(logits, _soft_rows(data, q[vqa.cpu()], logits.shape[-1]).to(device))
            stats["vqa_acc"] = (logits.argmax(-1) == target[vqa]).float().mean().item()
        ver = task == 1
        if ver.any():
            logit = model.verify_logit(state[ver]).float()
            loss = loss + F.binary_cross_entropy_with_logits(logit, target[ver].float())
            stats["verify_acc"] = ((logit > 0).long() == target[ver]).float().mean().item()
    caps = [(c, local[im]) for im in images for c in captions_of[im]]
    if caps:
        rows = [data.c_tokens[c, rng.randrange(int(data.c_refs[c]))] for c, _ in caps]
        tokens = torch.stack(rows)
        tokens = tokens[:, : int((tokens != PAD).sum(1).max())].to(device)  # trailing padding: no work
        c_image = torch.tensor([i for _, i in caps], device=device)
        logits = model.caption_logits(memory, c_image, tokens[:, :-1]).float()
        cap_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=PAD)
        loss = loss + caption_weight * cap_loss
        stats["caption_loss"] = cap_loss.item()
    return loss, stats


@torch.no_grad()
def evaluate_prepared(
    model: FusedModel, data: Prepared, device: torch.device, batch_images: int = 128, bf16: bool = False
) -> dict[str, Any]:
    """vqa and verify accuracy (overall and per meta.type) of a prepared split, choices respected,
    and the caption loss when it has captions."""
    model.eval()
    correct = torch.zeros(len(data.q_image), dtype=torch.bool)
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
            verify = model.verify_logit(state).float()
        task, target = data.q_task[q].to(device), data.q_target[q].to(device)
        right = torch.where(task == 0, logits.argmax(-1) == target, (verify > 0).long() == target)
        correct[q] = right.cpu()
    report: dict[str, Any] = {}
    if len(data.c_image):
        report["caption_loss"] = _caption_loss(model, data, device, batch_images, bf16)
    model.train()
    for task_id, name in ((0, "vqa"), (1, "verify")):
        mask = data.q_task == task_id
        if mask.any():
            report[f"{name}_acc"] = correct[mask].float().mean().item()
            types = sorted({data.q_type[i] for i in mask.nonzero().flatten().tolist()})
            report[f"{name}_by_type"] = {
                t: correct[[i for i in mask.nonzero().flatten().tolist() if data.q_type[i] == t]].float().mean().item()
                for t in types
            }
    return report


def _caption_loss(model: FusedModel, data: Prepared, device: torch.device, batch_images: int, bf16: bool) -> float:
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


def preflight(options: TrainOptions) -> torch.device:
    """Everything that can be checked before data is read or a step is taken: the device, that
    ``out`` is a folder that can be written, and that ``--resume`` has a whole ``last/`` to resume."""
    device = pick_device(options.device)
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the checkpoints")
    try:
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tempfile.mkdtemp(dir=out, prefix=".probe."))
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be written ({exc.strerror or exc}); choose another folder") from None
    if options.resume and (out / "last").exists():
        check_resumable(out / "last")  # a damaged last/ fails now, not after the data is prepared
    return device


def load_samples(options: TrainOptions) -> tuple[list[Sample], list[Sample]]:
    """The training and validation samples; training data with nothing to learn from is refused."""
    train_set = list(load_dataset(options.data, cache_dir=options.cache_dir))
    val_set = list(load_dataset(options.val, cache_dir=options.cache_dir)) if options.val else []
    if not train_set:
        raise DatasetError(f"{options.data}: no samples to train on")
    return train_set, val_set


def selection_score(report: dict[str, Any]) -> float:
    """What best/ maximizes: vqa plus verify accuracy, or for caption-only data minus the caption loss."""
    if "vqa_acc" in report or "verify_acc" in report:
        return report.get("vqa_acc", 0.0) + report.get("verify_acc", 0.0)
    return -report.get("caption_loss", 0.0)


def _scalars(report: dict[str, Any]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in report.items() if isinstance(v, float)}


def train(options: TrainOptions, on_update: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train and return the best validation report; checkpoints go to ``options.out``/best and /last."""
    device = preflight(options)
    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    bf16 = bf16_helps(device)
    train_set, val_set = load_samples(options)
    last = options.out / "last"
    # colours and shapes of meta.scene when every sample has one and scenes are wanted, else None
    # (its targets are per 8-pixel cell of the small CNN: not for a backbone's grid)
    cnn = options.model.get("backbone", "cnn") == "cnn"
    names = scene_vocab(train_set) if options.scene and cnn else None
    covered: float | None = None  # known for a vocabulary built now, not a resumed one
    if options.resume and (last / "config.json").is_file():
        ckpt = load_checkpoint(last, device)
        model, vocab, answers = ckpt.model, ckpt.vocab, ckpt.answers
        model.train()
    else:
        vocab, answers, covered = _vocabularies(train_set, options.max_answers)
        aux = {"aux_colors": len(names[0]), "aux_shapes": len(names[1])} if names else {}
        cfg = ModelConfig(vocab_size=len(vocab), answer_size=max(len(answers), 1), **{**aux, **options.model})
        model = FusedModel(cfg)
        if cfg.backbone != "cnn" and options.backbone_weights:
            load_trunk_weights(model.encoder.trunk, cfg.backbone, options.backbone_weights)
        model.to(device)
    cfg = model.cfg
    if names is not None and (cfg.backbone, len(names[0]), len(names[1])) != ("cnn", cfg.aux_colors, cfg.aux_shapes):
        names = None  # a resumed model whose scene vocabulary differs: train without the auxiliary loss
    data = prepare(train_set, vocab, answers, cfg.image_size, cfg.max_text, cfg.max_caption)
    if names is not None:
        data = attach(data, names, cfg.image_size)
    if on_update and answers and covered is not None:  # said once the data has proved readable
        on_update({"event": "info", "message": f"{len(answers):,} answers cover {covered:.1%} of the vqa samples"})
    val = prepare(val_set, vocab, answers, cfg.image_size, cfg.max_text, cfg.max_caption) if val_set else None
    if cfg.backbone != "cnn" and not cfg.finetune_backbone:  # a frozen trunk: its features once, from disk after
        encoder = model.encoder
        identity = trunk_identity(encoder.trunk, cfg.backbone, cfg.image_size)

        def trunk_features(pixels: torch.Tensor) -> torch.Tensor:
            with autocast(device, bf16):  # as the provider answers: the same features
                return encoder.features(pixels.to(device))

        for split in (data, val):
            if split is not None:
                split.images = cached_features(trunk_features, identity, split.images, options.cache_dir)
    captions_of = _caption_index(data)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # not a frozen trunk
    decay = [p for n, p in trainable if p.dim() >= 2 and "pos" not in n]
    no_decay = [p for n, p in trainable if not (p.dim() >= 2 and "pos" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": options.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=options.lr,
        betas=(0.9, 0.98),
    )
    state: dict[str, Any] = {"step": 0, "epoch": 0, "elapsed_s": 0.0, "best": None, "images_seen": 0}
    if options.resume and (last / "state.json").is_file():
        state.update(load_optimizer(last, optimizer))
    steps_per_epoch = math.ceil(len(data.images) / options.batch_images)
    total_steps = steps_per_epoch * options.epochs
    budget_s = options.max_minutes * 60 if options.max_minutes else math.inf
    warmup = max(1, int(0.03 * min(total_steps, 3000)))  # steps
    tasks = sorted({s.task.value for s in train_set})  # what the checkpoint can answer
    info = {"data": options.data, "val": options.val, "answers": len(answers), "vocab": len(vocab), "tasks": tasks}
    best_report: dict[str, Any] = {}
    started = time.monotonic() - state["elapsed_s"]
    last_validation = time.monotonic()

    def validate_and_save(final: bool = False) -> None:
        nonlocal best_report, last_validation
        report = evaluate_prepared(model, val, device, bf16=bf16) if val is not None else {}
        state["elapsed_s"] = time.monotonic() - started
        # accuracy against training time, for benchmarks to read their own targets from
        state.setdefault("history", []).append({"elapsed_s": round(state["elapsed_s"], 1), **_scalars(report)})
        meta = {**info, "step": state["step"], "elapsed_s": round(state["elapsed_s"], 1), "val": report}
        meta["history"] = state["history"]
        score = selection_score(report)
        save_checkpoint(last, model, vocab, answers, meta, optimizer, state)
        if val is None or state["best"] is None or score >= state["best"]:
            state["best"] = score
            best_report = report
            save_checkpoint(options.out / "best", model, vocab, answers, meta)
        last_validation = time.monotonic()
        if on_update:
            on_update({"event": "validation", "final": final, **report, "step": state["step"]})

    done = False
    window = [time.monotonic(), 0]  # images/s over the recent steps, not since the start
    while state["epoch"] < options.epochs and not done:
        for images in _batches(data, options.batch_images, rng):
            elapsed = time.monotonic() - started
            progress = max(state["step"] / total_steps, elapsed / budget_s)
            if progress >= 1:
                done = True
                break
            lr = cosine_lr(progress, options.lr, warmup=warmup / max(total_steps, 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device, bf16):
                loss, stats = _step_loss(model, data, images, captions_of, device, options.caption_weight, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            state["step"] += 1
            state["images_seen"] += len(images)
            window[1] += len(images)
            speed = window[1] / max(time.monotonic() - window[0], 1e-9)
            if window[1] >= 20 * options.batch_images:
                window[:] = [time.monotonic(), 0]
            if on_update:
                on_update(
                    {
                        "event": "step",
                        "loss": loss.item(),
                        "lr": lr,
                        "progress": progress,
                        "images_per_s": speed,
                        **stats,
                    }
                )
            if time.monotonic() - last_validation >= options.validate_every_s:
                validate_and_save()
        else:
            state["epoch"] += 1
    validate_and_save(final=True)
    return best_report
