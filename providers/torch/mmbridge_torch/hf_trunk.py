"""A transformers vision tower (CLIP, SigLIP, DINOv2: any ``AutoModel`` vision model) as a trunk of the
fused model: pixels normalized by the tower's own mean and std in, its patch features as a (C, g, g)
grid out. ``--backbone hf:<hub id or folder>``.

Training reads the tower's config, pixel statistics and weights from the folder or the hub (through
transformers, on the user's machine); the checkpoint keeps the config and statistics in its
``model.backbone_config`` and the weights in its own ``model.safetensors``, so answering needs
neither the folder nor the hub. transformers is needed only where such a model is built.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch
from torch import nn

from mmbridge.errors import ConfigError

__all__ = ["HF_PREFIX", "HFTrunk", "pretrained_tower", "tower_shape"]

HF_PREFIX = "hf:"


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError("an hf: backbone needs transformers; pip install 'transformers>=5,<6'") from None
    return transformers


def _vision_part(model: Any) -> Any:
    """The vision tower of ``model``: its ``vision_model`` (CLIP's and SigLIP's models, full or vision
    only, hold it there), or itself (DINOv2)."""
    return getattr(model, "vision_model", model)


def pretrained_tower(source: str) -> tuple[dict[str, Any], nn.Module]:
    """The description (config, pixel mean and std) and the pretrained module of ``source``'s vision tower."""
    transformers = _transformers()
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    local = os.path.isdir(source)
    try:
        model = transformers.AutoModel.from_pretrained(source, local_files_only=offline and not local)
        try:
            stats = transformers.AutoImageProcessor.from_pretrained(source, local_files_only=offline and not local)
            mean, std = list(stats.image_mean), list(stats.image_std)
        except (OSError, ValueError, AttributeError, TypeError):
            mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]  # no image processor saved: the common default
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"backbone hf:{source}: cannot be loaded ({first}); give a hub id or a local folder"
        ) from None
    tower = _vision_part(model)
    config = tower.config
    if not hasattr(config, "patch_size") or not hasattr(config, "hidden_size"):
        raise ConfigError(f"backbone hf:{source}: {config.model_type} is not a vision transformer with patches")
    return {"config": config.to_dict(), "mean": mean, "std": std}, tower


def _tower_from(described: dict[str, Any]) -> nn.Module:
    transformers = _transformers()
    config = dict(described["config"])
    config_class = transformers.AutoConfig.for_model(config.pop("model_type")).__class__
    return _vision_part(transformers.AutoModel.from_config(config_class.from_dict(config)))


def tower_shape(described: dict[str, Any], image_size: int) -> tuple[int, int]:
    """(channels, grid side) of the tower's features for ``image_size`` inputs."""
    config = described["config"]
    return int(config["hidden_size"]), image_size // int(config["patch_size"])


class HFTrunk(nn.Module):
    """(B,3,S,S) normalized pixels -> (B,C,S/p,S/p) patch features, the class and register tokens dropped."""

    def __init__(self, described: dict[str, Any]) -> None:
        super().__init__()
        self.tower = _tower_from(described)
        self.patch = int(described["config"]["patch_size"])
        self.pixel_stats = (described["mean"], described["std"])
        self._interpolate = "interpolate_pos_encoding" in inspect.signature(self.tower.forward).parameters

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        extra = {"interpolate_pos_encoding": True} if self._interpolate else {}
        tokens = self.tower(pixel_values=pixels, **extra).last_hidden_state  # (B,T,C)
        side = pixels.shape[-1] // self.patch
        patches = tokens[:, tokens.shape[1] - side * side :]  # the patch tokens come last
        return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], side, side)
