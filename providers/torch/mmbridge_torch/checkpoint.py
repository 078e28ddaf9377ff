"""Checkpoints: safetensors weights plus JSON for config and vocabularies. Loading one never runs code."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mmbridge.errors import ConfigError

from .backbones import BACKBONES
from .detector import DETECTORS
from .hf_trunk import HF_PREFIX
from .model import Model, ModelConfig, build_model
from .objects import FINDERS
from .reader import HOP1
from .text import TEXT_ENCODERS
from .vocab import SPECIALS, Vocab

__all__ = ["Checkpoint", "check_resumable", "load_checkpoint", "save_checkpoint"]

FORMAT = 1
WEIGHTS, CONFIG, OPTIMIZER, STATE = "model.safetensors", "config.json", "optimizer.safetensors", "state.json"


@dataclass
class Checkpoint:
    model: Model
    vocab: Vocab
    answers: list[str]
    info: dict[str, Any]


def save_checkpoint(
    folder: Path,
    model: Model,
    vocab: Vocab,
    answers: list[str],
    info: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """Write into a temporary folder and rename it into place: a kill leaves the old checkpoint whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    tmp.chmod(0o755)
    try:
        weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS))
        config = {
            "format": FORMAT,
            "model": model.cfg.to_dict(),
            "vocab": vocab.words,
            "answers": answers,
            "info": info,
        }
        (tmp / CONFIG).write_text(json.dumps(config, indent=1))
        if optimizer is not None:
            tensors, groups = _flatten_optimizer(optimizer)
            save_file(tensors, str(tmp / OPTIMIZER))
            (tmp / STATE).write_text(json.dumps({"param_groups": groups, **(state or {})}))
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    saved = optimizer.state_dict()
    tensors = {}
    for index, values in saved["state"].items():
        for name, value in values.items():
            tensors[f"{index}.{name}"] = torch.as_tensor(value).detach().to("cpu").contiguous()
    return tensors, saved["param_groups"]


def check_resumable(folder: Path) -> ModelConfig:
    """The model config of ``folder``, or a ConfigError unless it is a whole ``last/`` checkpoint:
    model, optimizer and state."""
    from safetensors import SafetensorError, safe_open

    cfg = load_checkpoint(folder).model.cfg
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
        with safe_open(str(folder / OPTIMIZER), framework="pt"):
            pass
    except (OSError, UnicodeDecodeError, ValueError, SafetensorError) as exc:
        problem = f"its optimizer state cannot be read ({type(exc).__name__}); delete it to start afresh"
        raise _refuse(folder, problem) from None
    if not isinstance(state, dict) or not isinstance(state.get("param_groups"), list):
        raise _refuse(folder, f"{STATE} is not a training state; delete the folder to start afresh")
    return cfg


def load_optimizer(folder: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore the optimizer of a ``last`` checkpoint (see check_resumable); returns the training state."""
    state = json.loads((folder / STATE).read_text())
    tensors = load_file(str(folder / OPTIMIZER))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("param_groups")})
    return state


def _refuse(folder: Path, problem: str) -> ConfigError:
    return ConfigError(f"checkpoint {folder}: {problem}; retrain it with mmbridge train, or restore the folder")


#: bounds on a config read from disk, checked before anything is allocated: a tampered file must
#: not make the loader build a model of a billion layers
_LIMITS = {"dropout": (0.0, 0.99), "aux_colors": (0, 4096), "aux_shapes": (0, 4096), "vocab_size": (6, 10_000_000)}
_LIMITS |= dict.fromkeys(("image_layers", "fusion_layers", "caption_layers"), (0, 64))
_LIMITS["detector_threshold"] = (0.0, 1.0)
_DEFAULT_LIMIT = (1, 65_536)
#: the model's settings that are names, and the names each may take
_NAMED = {"finder": (*FINDERS, "detector"), "detector": DETECTORS, "text_encoder": TEXT_ENCODERS, "hop1": HOP1}
MAX_PARAMETERS = 2_000_000_000


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _refuse(folder, f"{CONFIG} cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise _refuse(folder, f"{CONFIG} must hold a JSON object, not a {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise _refuse(folder, f"format {config.get('format')!r}; this mmbridge-torch reads format {FORMAT}")
    for key, kind in (("model", dict), ("vocab", list), ("answers", list), ("info", dict)):
        value = config.get(key, {} if key == "info" else None)
        if not isinstance(value, kind):
            raise _refuse(folder, f"{CONFIG}: {key!r} must be a JSON {kind.__name__}")
    for key in ("vocab", "answers"):
        if not all(isinstance(word, str) for word in config[key]):
            raise _refuse(folder, f"{CONFIG}: every entry of {key!r} must be a string")
    if config["vocab"][: len(SPECIALS)] != SPECIALS:
        raise _refuse(folder, f"{CONFIG}: 'vocab' must start with {', '.join(SPECIALS)}")
    return config


def _model_config(folder: Path, config: dict[str, Any]) -> ModelConfig:
    fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    given = config["model"]
    unknown = sorted(set(given) - set(fields))
    missing = sorted(n for n, f in fields.items() if n not in given and f.default is dataclasses.MISSING)
    if unknown or missing:
        raise _refuse(folder, f"model keys unknown: {unknown or 'none'}, missing: {missing or 'none'}")
    for name, value in given.items():
        if name == "backbone":
            if value != "cnn" and value not in BACKBONES and not str(value).startswith(HF_PREFIX):
                raise _refuse(folder, f"model.backbone {value!r} is not cnn, hf:... or one of {', '.join(BACKBONES)}")
            continue
        if name == "backbone_config":
            if value is not None and not (isinstance(value, dict) and {"config", "mean", "std"} <= set(value)):
                raise _refuse(folder, "model.backbone_config must be null or hold config, mean and std")
            continue
        if name == "image_tokens":
            if value not in ("grid", "objects"):
                raise _refuse(folder, f"model.image_tokens must be grid or objects, got {value!r}")
            continue
        if name in _NAMED:
            if value not in _NAMED[name]:
                raise _refuse(folder, f"model.{name} must be one of {', '.join(_NAMED[name])}, got {value!r}")
            continue
        if name == "finetune_backbone":
            if not isinstance(value, bool):
                raise _refuse(folder, f"model.finetune_backbone must be true or false, got {value!r}")
            continue
        low, high = _LIMITS.get(name, _DEFAULT_LIMIT)
        number = name in ("dropout", "detector_threshold")
        if isinstance(value, bool) or not isinstance(value, (int, float) if number else int):
            raise _refuse(folder, f"model.{name} must be {'a number' if number else 'a whole number'}, got {value!r}")
        if not low <= value <= high:
            raise _refuse(folder, f"model.{name} = {value} is outside {low}..{high}")
    cfg = ModelConfig(**{"hop1": "sum", **given})  # saved before hop1 existed: it read the sum
    if cfg.d_model % cfg.n_heads or cfg.image_size < 8:
        raise _refuse(folder, "model.d_model must be a multiple of n_heads, and image_size at least 8")
    if cfg.vocab_size != len(config["vocab"]) or cfg.answer_size != max(len(config["answers"]), 1):
        raise _refuse(folder, "model.vocab_size and answer_size do not match the vocabulary and answers")
    return cfg


#: safetensors' names of the dtypes a model's tensors may have
_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
_DTYPES |= {torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def _check_weights(folder: Path, expected: dict[str, torch.Tensor], rename: Callable[[str], str | None]) -> None:
    """Names, shapes and dtypes in the safetensors header against the model's (``expected``: its
    state dict on the meta device), before any tensor is read; each name as ``rename`` gives it
    (an earlier version's name, now; None: no longer used)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(folder / WEIGHTS), framework="pt") as f:
            saved = {name: (tuple(f.get_slice(name).get_shape()), f.get_slice(name).get_dtype()) for name in f.keys()}  # noqa: SIM118
        found = {new: kind for name, kind in saved.items() if (new := rename(name)) is not None}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _refuse(folder, f"{WEIGHTS} is damaged or not a safetensors file ({exc})") from None
    missing = sorted(set(expected) - set(found))
    unknown = sorted(set(found) - set(expected))
    common = set(found) & set(expected)
    wrong = sorted(n for n in common if found[n][0] != tuple(expected[n].shape))
    types = sorted(n for n in common if found[n][1] != _DTYPES.get(expected[n].dtype, str(expected[n].dtype)))
    if missing or unknown or wrong or types:
        labels = (("missing", missing), ("unknown", unknown), ("wrong shape", wrong), ("wrong dtype", types))
        detail = "; ".join(
            f"{label}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}" for label, names in labels if names
        )
        raise _refuse(folder, f"{WEIGHTS} does not fit its config ({detail})")


def load_checkpoint(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint folder (model.safetensors + config.json) into an eval-mode model.

    Every part is checked first (JSON types, config bounds, tensor names and shapes, the size of
    the model), so a damaged or tampered folder is one ConfigError, never a crash or a huge allocation.
    """
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(f"checkpoint {folder} needs {WEIGHTS} and {CONFIG}; train one with mmbridge train")
    config = _read_config(folder)
    cfg = _model_config(folder, config)
    with torch.device("meta"):  # shapes without memory
        skeleton = build_model(cfg)
    shapes = skeleton.state_dict()
    if sum(math.prod(t.shape) for t in shapes.values()) > MAX_PARAMETERS:
        raise _refuse(folder, f"the model would have over {MAX_PARAMETERS:,} parameters")
    rename = skeleton.current_name  # names saved by an earlier version, as they are now
    _check_weights(folder, shapes, rename)
    try:
        weights = load_file(str(folder / WEIGHTS), device=str(device))
        model = build_model(cfg)
        model.load_state_dict({new: t for name, t in weights.items() if (new := rename(name)) is not None})
    except (RuntimeError, OSError, ValueError) as exc:
        raise _refuse(folder, f"its weights cannot be loaded ({str(exc).splitlines()[0]})") from None
    model.to(device).eval()
    return Checkpoint(model, Vocab(config["vocab"]), config["answers"], config.get("info", {}))
