"""torchvision image trunks for real photos: built, given weights, and their features cached on disk.

A trunk is a torchvision classifier without its pooling and classification layers: it maps an
image to a grid of features (output stride 32). Frozen (the default), its features are computed
once per image and kept in the cache folder, keyed by the letterboxed pixels' hash and the trunk's
identity (name, weights hash, input size), so each training epoch after the first runs the fusion
model alone. Weights come from torchvision (``"DEFAULT"``, downloaded on the user's machine) or
from a state-dict file of the whole torchvision model; a checkpoint carries the trunk's weights in
its own ``model.safetensors``, so answering needs neither.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import xxhash
from torch import nn

from mmbridge.errors import ConfigError

from .hf_trunk import HF_PREFIX, HFTrunk, tower_shape

__all__ = [
    "BACKBONES",
    "build_trunk",
    "cached_features",
    "load_torchvision_weights",
    "load_trunk_weights",
    "trunk_identity",
    "trunk_shape",
]

BACKBONES = ("resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0")


def _torchvision_model(name: str) -> nn.Module:
    from torchvision import models

    if name not in BACKBONES:
        raise ConfigError(f"backbone {name!r} is not known; use cnn or one of {', '.join(BACKBONES)}")
    return models.get_model(name, weights=None)


def _trunk_of(model: nn.Module, name: str) -> nn.Module:
    if name.startswith("resnet"):
        return nn.Sequential(*list(model.children())[:-2])  # without avgpool and fc
    return model.features  # type: ignore[return-value]


def build_trunk(name: str, described: dict | None = None) -> nn.Module:
    """The trunk of torchvision's ``name``, with random weights; for ``hf:...``, the transformers vision
    tower ``described`` (hf_trunk.pretrained_tower)."""
    if name.startswith(HF_PREFIX):
        if described is None:
            raise ConfigError(f"backbone {name!r}: the checkpoint lacks model.backbone_config; train it again")
        return HFTrunk(described)
    return _trunk_of(_torchvision_model(name), name)


def trunk_shape(name: str, image_size: int, described: dict | None = None) -> tuple[int, int]:
    """(channels, grid side) of the trunk's output for ``image_size`` inputs; costs no memory."""
    if name.startswith(HF_PREFIX) and described is not None:
        return tower_shape(described, image_size)
    with torch.device("meta"):
        out = build_trunk(name)(torch.zeros(1, 3, image_size, image_size))
    return out.shape[1], out.shape[-1]


def load_torchvision_weights(model: nn.Module, name: str, weights: str, role: str) -> None:
    """Load ``weights`` into torchvision's ``name`` model: "DEFAULT" (torchvision's, downloaded here)
    or a state-dict file of the whole model (``.safetensors``, else torch's format, tensors only).
    What cannot be loaded is one ConfigError line that names the ``role`` ("backbone", "detector")."""
    from torchvision import models

    try:
        if weights == "DEFAULT":
            state = models.get_model_weights(name).DEFAULT.get_state_dict(progress=False)
        elif weights.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(weights)
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{role} weights {weights!r} for {name}: cannot be loaded ({first})") from None


def load_trunk_weights(trunk: nn.Module, name: str, weights: str) -> None:
    """Load ``weights`` ("DEFAULT", or a state-dict file of the whole torchvision model) into ``trunk``."""
    full = _torchvision_model(name)
    load_torchvision_weights(full, name, weights, "backbone")
    trunk.load_state_dict(_trunk_of(full, name).state_dict())


def trunk_identity(trunk: nn.Module, name: str, image_size: int) -> str:
    """Names what a trunk computes: its name, input size and a hash of its weights."""
    digest = hashlib.sha256()
    for key, value in sorted(trunk.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return f"{name}-{image_size}-{digest.hexdigest()[:16]}"


@torch.no_grad()
def cached_features(
    features: Callable[[torch.Tensor], torch.Tensor], identity: str, pixels: torch.Tensor, cache_dir: Path
) -> torch.Tensor:
    """(N,C,g,g) float16 ``features`` of (N,3,S,S) uint8 ``pixels``, each image computed once and
    kept in ``cache_dir``/features under ``identity`` and the hash of its pixels."""
    from mmbridge.wrappers.cache import guarded, open_store

    folder = cache_dir / "features"
    keys = [f"{identity}:{xxhash.xxh3_128_hexdigest(p.numpy().tobytes())}" for p in pixels]
    with open_store(folder) as store, guarded(folder, "use"):
        found = [store.get(key) for key in keys]
        out = [None if f is None else torch.from_numpy(np.load(io.BytesIO(f))) for f in found]
        missing = [i for i, f in enumerate(out) if f is None]
        for start in range(0, len(missing), 64):
            rows = missing[start : start + 64]
            for i, feature in zip(rows, features(pixels[rows]).to(torch.float16).cpu(), strict=True):
                out[i] = feature
                buf = io.BytesIO()
                np.save(buf, feature.numpy(), allow_pickle=False)
                store.set(keys[i], buf.getvalue())
    return torch.stack(out)  # type: ignore[arg-type]
