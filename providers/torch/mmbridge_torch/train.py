"""Training: any dataset in the project's format, a mix of vqa, verify and caption, on CPU or CUDA.

``train()`` is a few named steps: ``preflight`` (device, output folder, resumable state),
``load_samples``, ``_model_for`` (new, or last/ with --resume), ``_tensors`` (each image decoded
once; a frozen backbone's features once, from disk after), then the loop (loop.py). What the images
become (grid or object tokens) is chosen by token_choice.py.
Scene supervision, when the data has it and it is not turned off, comes from scene.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mmbridge.atomic import writable_folder
from mmbridge.data import load_dataset
from mmbridge.data.sample import Sample
from mmbridge.errors import ConfigError, DatasetError
from mmbridge.types import Task

from .backbones import cached_features, load_trunk_weights, trunk_identity
from .calibration import calibrate
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .detector import DETECTORS
from .device import autocast, bf16_helps, pick_device
from .guard import Profile
from .hf_trunk import HF_PREFIX, pretrained_tower
from .loop import Run, optimizer_for
from .model import Model, ModelConfig, build_model
from .objects import FINDERS, Finder, present, segment_batch
from .options import TrainOptions
from .scene import attach, scene_vocab
from .tensors import Prepared, answer_of, prepare
from .text import TEXT_ENCODERS
from .token_choice import TokenChoice, choose_image_tokens, why_not_auto
from .vocab import Vocab

__all__ = ["TrainOptions", "load_samples", "preflight", "train"]


PHOTO_SIDE = 224  # the input side for the detector finder unless --image-size says otherwise


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
    if options.model.get("text_encoder", TEXT_ENCODERS[0]) not in TEXT_ENCODERS:
        raise ConfigError(f"--text-encoder {options.model['text_encoder']!r}: use {' or '.join(TEXT_ENCODERS)}")
    if tokens == "grid" and "text_encoder" in options.model:
        raise ConfigError("--text-encoder is the object reader's: drop it, or use --image-tokens auto or a finder")
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
    tokens = choice.describe() if choice is not None else f"{model.cfg.image_tokens} ({why_not_auto(options, names)})"
    if on_update and answers and covered is not None:  # said once the data has proved readable
        on_update({"event": "info", "message": f"{len(answers):,} answers cover {covered:.1%} of the vqa samples"})
        on_update({"event": "info", "message": f"image tokens: {tokens}"})
    tasks = sorted({s.task.value for s in train_set})  # what the checkpoint can answer
    info = {"data": options.data, "val": options.val, "answers": len(answers), "vocab": len(vocab), "tasks": tasks}
    if covered is not None:  # a new model: how its image tokens were chosen, and (objects) what they look like
        info["image_tokens"] = tokens
    if model.cfg.image_tokens == "objects":
        info["objects"] = Profile.of(model.cfg.finder, data.images).to_info()
    run = Run(options, model, vocab, answers, data, val, optimizer_for(model, options), device, info, on_update)
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
