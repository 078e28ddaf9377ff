"""Training: any dataset in the project's format, a mix of vqa, verify and caption, on CPU or CUDA.

``train()`` is a few named steps: ``preflight`` (device, output folder, resumable state),
``load_samples``, ``_model_for`` (new, or last/ with --resume), ``_tensors`` (each image decoded
once; a frozen backbone's features once, from disk after), then ``_Run.fit``: warmup + cosine
learning rate, bf16 autocast where it pays, the loss of losses.step_loss; every validation
writes ``last/`` (with the optimizer) and, when it improves, ``best/``, both atomically.
Scene supervision, when the data has it and it is not turned off, comes from scene.py.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from mmbridge.atomic import writable_folder
from mmbridge.data import load_dataset
from mmbridge.data.sample import Sample
from mmbridge.errors import ConfigError, DatasetError, ImageError
from mmbridge.image import Image
from mmbridge.types import Task

from .backbones import cached_features, load_trunk_weights, trunk_identity
from .calibration import calibrate
from .checkpoint import check_resumable, load_checkpoint, load_optimizer, save_checkpoint
from .detector import DETECTORS
from .device import autocast, bf16_helps, pick_device
from .evaluation import evaluate_prepared, selection_score
from .guard import Profile
from .hf_trunk import HF_PREFIX, pretrained_tower
from .losses import batches, caption_index, step_loss
from .model import Model, ModelConfig, ObjectModel, build_model, cosine_lr
from .objects import FINDERS, Finder, choose_finder, pictures_differ, present, segment_batch
from .scene import attach, scene_vocab
from .tensors import Prepared, answer_of, letterbox, prepare
from .vocab import Vocab

__all__ = ["TrainOptions", "load_samples", "preflight", "train"]


PHOTO_SIDE = 224  # the input side for the detector finder unless --image-size says otherwise


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
    #: images per step (all their questions come along); None: by the model (see _Run)
    batch_images: int | None = None
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
    #: the detector finder's weights (detector.py): "DEFAULT" or a state-dict file; with them,
    #: --image-tokens auto may choose the detector for pictures that do not segment
    detector_weights: str | None = None


def _vocabularies(samples: list[Sample], max_answers: int) -> tuple[Vocab, list[str], float]:
    """Words, the ``max_answers`` most frequent answers, and the share of vqa samples whose answer
    is among them."""
    texts = [s.question or s.statement or "" for s in samples] + [r for s in samples for r in s.references or []]
    answers = Counter(answer_of(s) for s in samples if s.task is Task.VQA and s.answers)
    kept = sorted(answers, key=lambda a: (-answers[a], a))[:max_answers]
    covered = sum(answers[a] for a in kept) / max(sum(answers.values()), 1)
    return Vocab.build(texts), kept, covered


def preflight(options: TrainOptions) -> torch.device:
    """Everything that can be checked before data is read or a step is taken: the device, that
    ``out`` is a folder that can be written, and that ``--resume`` has a whole ``last/`` to resume."""
    device = pick_device(options.device)
    tokens, finder = options.model.get("image_tokens"), options.model.get("finder", "flat")
    if tokens not in (None, "grid", "objects") or finder not in (*FINDERS, "detector"):
        raise ConfigError(f"--image-tokens {tokens!r}: use auto, grid, objects, flat, shaded or detector")
    if finder == "detector" and not options.detector_weights:
        raise ConfigError("--image-tokens detector needs --detector-weights: DEFAULT (downloaded) or a state-dict file")
    if options.model.get("detector", DETECTORS[0]) not in DETECTORS:
        raise ConfigError(f"--detector {options.model['detector']!r} is not known; use one of {', '.join(DETECTORS)}")
    if tokens == "objects" and options.model.get("backbone", "cnn") != "cnn":
        raise ConfigError("--image-tokens objects replaces the image encoder: drop --backbone, or use grid")
    out = writable_folder(options.out)
    if options.resume and (out / "last").exists():
        # a damaged last/, or options that would build another model, fail now, not after the data is prepared
        clashes = _clashes(options.model, check_resumable(out / "last"))
        if clashes:
            raise ConfigError(
                f"--resume: the checkpoint in {out / 'last'} was built otherwise: {', '.join(clashes)}; "
                "drop those options to resume it, or train into another --out"
            )
    return device


def _clashes(asked: dict[str, Any], cfg: ModelConfig) -> list[str]:
    """The model options given with --resume that differ from the checkpoint's, as the CLI spells them."""

    def tokens(kind: Any, finder: Any) -> Any:  # --image-tokens grid, flat or shaded
        return finder if kind == "objects" else kind

    shown = {
        name: (value, getattr(cfg, name)) for name, value in asked.items() if name not in ("image_tokens", "finder")
    }
    if "image_tokens" in asked:
        shown["image_tokens"] = (
            tokens(asked["image_tokens"], asked.get("finder", "flat")),
            tokens(cfg.image_tokens, cfg.finder),
        )
    return [
        f"--{name.replace('_', '-')} {value} (it has {has})" for name, (value, has) in shown.items() if value != has
    ]


def load_samples(options: TrainOptions) -> tuple[list[Sample], list[Sample]]:
    """The training and validation samples; training data with nothing to learn from is refused."""
    train_set = list(load_dataset(options.data, cache_dir=options.cache_dir))
    val_set = list(load_dataset(options.val, cache_dir=options.cache_dir)) if options.val else []
    if not train_set:
        raise DatasetError(f"{options.data}: no samples to train on")
    return train_set, val_set


def _model_for(
    options: TrainOptions, samples: list[Sample], device: torch.device
) -> tuple[Model, Vocab, list[str], tuple[list[str], list[str]] | None, float | None, TokenChoice | None]:
    """A new model (or last/'s, with --resume); the scene names it learns from, the share of vqa
    samples its answers cover (None for a resumed one), and what --image-tokens auto chose (None
    when it did not run)."""
    # scene targets describe the small CNN's 8-pixel cells: not a backbone's grid, not object tokens
    cnn = options.model.get("backbone", "cnn") == "cnn"
    names = scene_vocab(samples) if options.scene and cnn and options.model.get("image_tokens") != "objects" else None
    last = options.out / "last"
    if options.resume and (last / "config.json").is_file():
        ckpt = load_checkpoint(last, device)
        ckpt.model.train()
        cfg = ckpt.model.cfg
        if names is not None and (cfg.backbone, len(names[0]), len(names[1])) != (
            "cnn",
            cfg.aux_colors,
            cfg.aux_shapes,
        ):
            names = None  # its scene vocabulary differs: train without the auxiliary losses
        return ckpt.model, ckpt.vocab, ckpt.answers, names, None, None
    vocab, answers, covered = _vocabularies(samples, options.max_answers)
    aux = {"aux_colors": len(names[0]), "aux_shapes": len(names[1])} if names else {}
    cfg = ModelConfig(vocab_size=len(vocab), answer_size=max(len(answers), 1), **{**aux, **options.model})
    tower = None
    if cfg.backbone.startswith(HF_PREFIX):  # its config, statistics and weights, from the folder or the hub
        if options.backbone_weights:
            raise ConfigError("--backbone-weights is for torchvision backbones; an hf: backbone brings its own")
        cfg.backbone_config, tower = pretrained_tower(cfg.backbone.removeprefix(HF_PREFIX))
    choice = None
    if "image_tokens" not in options.model and cnn and names is None:
        choice = choose_image_tokens(samples, cfg, keep_size="image_size" in options.model)
        if choice.kind == "grid" and options.detector_weights:  # pictures that do not segment: a detector's objects
            choice = choice._replace(kind="objects", finder="detector")
        cfg.image_tokens, cfg.image_size, cfg.finder = choice.kind, choice.size, choice.finder
    if cfg.finder == "detector" and "image_size" not in options.model:
        cfg.image_size = PHOTO_SIDE  # a photo at 64 pixels leaves a detector little to find
    model = build_model(cfg)
    if cfg.image_tokens == "objects" and cfg.finder == "detector":
        model.encoder.detector.load_weights(options.detector_weights)
    elif tower is not None:
        model.encoder.trunk.tower.load_state_dict(tower.state_dict())
    elif cfg.backbone != "cnn" and options.backbone_weights:
        load_trunk_weights(model.encoder.trunk, cfg.backbone, options.backbone_weights)
    return model.to(device), vocab, answers, names, covered, choice


def _why_not_auto(options: TrainOptions, names: Any) -> str:
    if "image_tokens" in options.model:
        return "as asked"
    if options.model.get("backbone", "cnn") != "cnn":
        return "the backbone's"
    return "the samples carry scenes, which the grid learns from" if names else "resumed"


class TokenChoice(NamedTuple):
    """What ``--image-tokens auto`` chose: the tokens, the input side, the share of the sampled
    training pictures that segment into objects (objects from 95%), the finder (objects.choose_finder)
    and the share of pictures on which the flat and shaded finders agree (flat from 95%)."""

    kind: str
    size: int
    share: float
    finder: str
    agree: float

    def describe(self) -> str:
        if self.finder == "detector":
            return (
                f"objects, detector finder ({self.share:.0%} of sampled training pictures segment into flat or shaded"
                " objects, those from 95%; below, the detector's objects, as --detector-weights is given)"
            )
        return (
            f"{self.kind} ({self.share:.0%} of sampled training pictures segment into objects for the {self.finder}"
            f" finder, objects from 95%; the flat and shaded finders agree on {self.agree:.0%}, flat from 95%)"
        )


def choose_image_tokens(samples: list[Sample], cfg: ModelConfig, keep_size: bool, sample: int = 200) -> TokenChoice:
    """``--image-tokens auto``: "objects" when 95% of the training images segment into objects
    (objects.segments_like) for the finder objects.choose_finder picks, else "grid"; and the input
    side. Unless ``keep_size`` (--image-size given), pictures that share one size whose longer side
    is 16 to 128 keep that side: resizing blurs the edges their objects are found by (Sort-of-CLEVR's
    75-pixel pictures, resized to 64, looked like photos and trained on the grid: 47% after 2.5
    minutes, where at their own size, 96% after 4); one that is not square is letterboxed to it."""
    seen: dict[str, tuple[tuple[int, int], torch.Tensor | None, torch.Tensor]] = {}
    for s in samples:
        if len(seen) >= sample:
            break
        if str(s.image) not in seen:
            try:
                pil = Image(s.image).pil
            except ImageError as exc:
                raise DatasetError(f"sample {s.id}: {exc}") from None
            side = max(pil.size)
            seen[str(s.image)] = (
                pil.size,
                letterbox(pil, side) if 16 <= side <= 128 else None,
                letterbox(pil, cfg.image_size),
            )
    sizes = {size for size, _, _ in seen.values()}
    side, pictures = cfg.image_size, [resized for _, _, resized in seen.values()]
    if not keep_size and len(sizes) == 1 and all(own is not None for _, own, _ in seen.values()):
        side, pictures = max(sizes.pop()), [own for _, own, _ in seen.values()]
    if not pictures:
        return TokenChoice("grid", cfg.image_size, 0.0, "flat", 0.0)
    stacked = torch.stack(pictures)
    finder, agree, share = choose_finder(stacked, cfg.max_objects)
    if share >= 0.95:
        return TokenChoice("objects", side, share, finder, agree)
    return TokenChoice("grid", cfg.image_size, share, finder, agree)


def _tensors(
    options: TrainOptions,
    model: Model,
    splits: tuple[list[Sample], list[Sample]],
    vocab: Vocab,
    answers: list[str],
    names: tuple[list[str], list[str]] | None,
    device: torch.device,
) -> tuple[Prepared, Prepared | None]:
    """The training and validation splits as tensors, each image decoded once (and a frozen
    backbone's features computed once, kept on disk)."""
    cfg = model.cfg
    data, val = (
        prepare(s, vocab, answers, cfg.image_size, cfg.max_text, cfg.max_caption) if s else None for s in splits
    )
    assert data is not None
    if names is not None:
        data = attach(data, names, cfg.image_size)
    if cfg.backbone != "cnn" and not cfg.finetune_backbone:
        encoder, bf16 = model.encoder, bf16_helps(device)
        identity = trunk_identity(encoder.trunk, cfg.backbone, cfg.image_size)

        def trunk_features(pixels: torch.Tensor) -> torch.Tensor:
            with autocast(device, bf16):  # as the provider answers: the same features
                return encoder.features(pixels.to(device))

        for split in (data, val):
            if split is not None:
                split.images = cached_features(trunk_features, identity, split.images, options.cache_dir)
    if cfg.image_tokens == "objects":  # every image segmented once, not once per epoch
        finder = model.encoder.finder
        for split in (data, val):
            if split is not None:
                split.images = _segmented(finder, split.images, cfg, options.cache_dir)
        # slots no training or validation picture fills are dropped: the reader's work grows with
        # them, and an answer is the same with or without empty slots (they are masked)
        most = max(
            int(present(split.images).sum(-1).max()) for split in (data, val) if split is not None and len(split.images)
        )
        for split in (data, val):
            if split is not None:
                split.images = split.images[:, : max(most, 1)]
    return data, val


def _segmented(finder: str | Finder, images: torch.Tensor, cfg: ModelConfig, cache_dir: Path) -> torch.Tensor:
    """The object descriptions of (N,3,S,S) uint8 ``images``; a detector's are kept on disk (keyed
    by the pixels and the detector's weights, size and threshold): it takes ~80 ms a picture here."""
    if isinstance(finder, str):
        return segment_batch(images, cfg.max_objects, finder)
    identity = f"{trunk_identity(finder, cfg.detector, cfg.detector_size)}-{cfg.detector_threshold}-{cfg.max_objects}"
    return cached_features(lambda p: segment_batch(p, cfg.max_objects, finder), identity, images, cache_dir).float()


def _optimizer(model: Model, options: TrainOptions) -> torch.optim.Optimizer:
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # not a frozen trunk
    decay = [p for n, p in trainable if p.dim() >= 2 and "pos" not in n]
    no_decay = [p for n, p in trainable if not (p.dim() >= 2 and "pos" not in n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": options.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=options.lr,
        betas=(0.9, 0.98),
    )


@dataclass
class _Run:
    """One training run's moving parts: the loop's steps and its validations."""

    options: TrainOptions
    model: Model
    vocab: Vocab
    answers: list[str]
    data: Prepared
    val: Prepared | None
    optimizer: torch.optim.Optimizer
    device: torch.device
    info: dict[str, Any]
    on_update: Callable[[dict[str, Any]], None] | None
    state: dict[str, Any] = field(default_factory=dict)
    best_report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bf16 = bf16_helps(self.device)
        self.rng = random.Random(self.options.seed)
        # the grounding contrast needs pictures that differ in what their questions name (objects.py)
        objects = isinstance(self.model, ObjectModel)
        self.grounding = objects and pictures_differ(self.data.images)
        if objects and not self.grounding and self.on_update:
            message = (
                "grounding contrast off: the training pictures hold the same colours, words cannot tell them"
                " apart; hop 1 learns what a question names by explaining its answers instead"
            )
            self.on_update({"event": "info", "message": message})
        # --batch-images, else 8 images a step with object tokens and the contrast (more, smaller
        # steps found the named objects sooner) and 32 otherwise
        self.batch = self.options.batch_images or (8 if self.grounding else 32)
        self.captions_of = caption_index(self.data)
        self.state = {"step": 0, "epoch": 0, "elapsed_s": 0.0, "best": None, "images_seen": 0}
        last = self.options.out / "last"
        if self.options.resume and (last / "state.json").is_file():
            self.state.update(load_optimizer(last, self.optimizer))
        self.started = time.monotonic() - self.state["elapsed_s"]
        self.last_validation = time.monotonic()
        # images and questions (vqa and verify) a second over the recent steps, not since the start
        self.window: list[float] = [time.monotonic(), 0, 0]

    def fit(self) -> dict[str, Any]:
        options = self.options
        total_steps = math.ceil(len(self.data.images) / self.batch) * options.epochs
        budget_s = options.max_minutes * 60 if options.max_minutes else math.inf
        # warm up over steps: as a share of the progress, a time budget with many epochs left it ~0
        # steps (the learning benchmark's epochs=10,000). Starting at the full rate, shapes with no
        # scene was at 86% validation vqa after 2.3 minutes (94% with 90 warmup steps), and one
        # 12-minute run stalled at 90%
        warmup_steps = max(1, int(0.03 * min(total_steps, 3000)))
        while self.state["epoch"] < options.epochs:
            for images in batches(self.data, self.batch, self.rng):
                progress = max(self.state["step"] / total_steps, (time.monotonic() - self.started) / budget_s)
                if progress >= 1:
                    self.validate_and_save(final=True)
                    return self.best_report
                warm = min(1.0, (self.state["step"] + 1) / warmup_steps)
                self.step(images, progress, warm * cosine_lr(progress, options.lr))
                if time.monotonic() - self.last_validation >= options.validate_every_s:
                    self.validate_and_save()
            self.state["epoch"] += 1
        self.validate_and_save(final=True)
        return self.best_report

    def step(self, images: list[int], progress: float, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.bf16):
            loss, stats = step_loss(
                self.model,
                self.data,
                images,
                self.captions_of,
                self.device,
                self.options.caption_weight,
                self.rng,
                grounding=self.grounding,
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.state["step"] += 1
        self.state["images_seen"] += len(images)
        self.window[1] += len(images)
        self.window[2] += sum(len(self.data.per_image[i]) for i in images)  # its questions and statements
        elapsed = max(time.monotonic() - self.window[0], 1e-9)
        speed, questions = self.window[1] / elapsed, self.window[2] / elapsed
        if self.window[1] >= 20 * self.batch:
            self.window[:] = [time.monotonic(), 0, 0]
        if self.on_update:
            event = {"event": "step", "loss": loss.item(), "lr": lr, "progress": progress, "images_per_s": speed}
            self.on_update({**event, "questions_per_s": questions, **stats})

    def validate_and_save(self, final: bool = False) -> None:
        """Validate, write last/ (with the optimizer) and, when it is the best so far, best/."""
        state, out = self.state, self.options.out
        report = evaluate_prepared(self.model, self.val, self.device, bf16=self.bf16) if self.val is not None else {}
        state["elapsed_s"] = time.monotonic() - self.started
        # accuracy against training time, for benchmarks to read their own targets from
        state.setdefault("history", []).append({"elapsed_s": round(state["elapsed_s"], 1), **_scalars(report)})
        meta = {**self.info, "step": state["step"], "elapsed_s": round(state["elapsed_s"], 1), "val": report}
        meta["history"] = state["history"]
        score = selection_score(report)
        save_checkpoint(out / "last", self.model, self.vocab, self.answers, meta, self.optimizer, state)
        if self.val is None or state["best"] is None or score >= state["best"]:
            state["best"] = score
            self.best_report = report
            save_checkpoint(out / "best", self.model, self.vocab, self.answers, meta)
        self.last_validation = time.monotonic()
        if self.on_update:
            self.on_update({"event": "validation", "final": final, **report, "step": state["step"]})


def _scalars(report: dict[str, Any]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in report.items() if isinstance(v, float)}


def train(options: TrainOptions, on_update: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train and return the best validation report; checkpoints go to ``options.out``/best and /last."""
    device = preflight(options)
    if on_update and options.resume:
        last = options.out / "last"
        said = (
            f"resuming {last}" if last.exists() else f"--resume: {last} does not exist yet, so training starts afresh"
        )
        on_update({"event": "info", "message": said})
    torch.manual_seed(options.seed)
    train_set, val_set = load_samples(options)
    model, vocab, answers, names, covered, choice = _model_for(options, train_set, device)
    data, val = _tensors(options, model, (train_set, val_set), vocab, answers, names, device)
    tokens = choice.describe() if choice is not None else f"{model.cfg.image_tokens} ({_why_not_auto(options, names)})"
    if on_update and answers and covered is not None:  # said once the data has proved readable
        on_update({"event": "info", "message": f"{len(answers):,} answers cover {covered:.1%} of the vqa samples"})
        on_update({"event": "info", "message": f"image tokens: {tokens}"})
    tasks = sorted({s.task.value for s in train_set})  # what the checkpoint can answer
    info = {"data": options.data, "val": options.val, "answers": len(answers), "vocab": len(vocab), "tasks": tasks}
    if covered is not None:  # a new model: how its image tokens were chosen, and (objects) what they look like
        info["image_tokens"] = tokens
    if model.cfg.image_tokens == "objects":
        info["objects"] = Profile.of(model.cfg.finder, data.images).to_info()
    run = _Run(options, model, vocab, answers, data, val, _optimizer(model, options), device, info, on_update)
    report = run.fit()
    if val is not None:
        _calibrate_best(options.out / "best", val, device, on_update)
    return report


def _calibrate_best(folder: Path, val: Prepared, device: torch.device, on_update: Callable | None) -> None:
    """Fit best/'s confidence temperatures on the validation split and store them in it (calibration.py)."""
    best = load_checkpoint(folder, device)
    fitted = calibrate(best.model, val, device, bf16_helps(device))
    if not fitted:
        return
    save_checkpoint(folder, best.model, best.vocab, best.answers, {**best.info, "calibration": fitted})
    if on_update:
        said = "; ".join(
            f"{t} T={f['temperature']:.2f}, ECE {f['ece_before']:.3f} -> {f['ece_after']:.3f}"
            for t, f in fitted.items()
        )
        on_update({"event": "info", "message": f"calibrated on the validation split: {said}"})
