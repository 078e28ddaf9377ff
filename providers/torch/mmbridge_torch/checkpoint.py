"""Checkpoints: safetensors weights plus JSON for config and vocabularies. Loading one never runs code."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mmbridge.errors import ConfigError

from .model import FusedModel, ModelConfig
from .vocab import Vocab

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = 1
WEIGHTS, CONFIG, OPTIMIZER, STATE = "model.safetensors", "config.json", "optimizer.safetensors", "state.json"


@dataclass
class Checkpoint:
    model: FusedModel
    vocab: Vocab
    answers: list[str]
    info: dict[str, Any]


def save_checkpoint(
    folder: Path,
    model: FusedModel,
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


def load_optimizer(folder: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore the optimizer of a ``last`` checkpoint; returns the training state saved with it."""
    state = json.loads((folder / STATE).read_text())
    tensors = load_file(str(folder / OPTIMIZER))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("param_groups")})
    return state


def load_checkpoint(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint folder (model.safetensors + config.json) into an eval-mode model."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(f"checkpoint {folder} needs {WEIGHTS} and {CONFIG}; train one with mmbridge train")
    config = json.loads((folder / CONFIG).read_text())
    if config.get("format") != FORMAT:
        raise ConfigError(f"checkpoint {folder} has format {config.get('format')}, this mmbridge-torch reads {FORMAT}")
    model = FusedModel(ModelConfig(**config["model"]))
    model.load_state_dict(load_file(str(folder / WEIGHTS), device=str(device)))
    model.to(device).eval()
    return Checkpoint(model, Vocab(config["vocab"]), config["answers"], config.get("info", {}))
