"""mmbridge-torch: the ``torch`` provider. This module is light: torch is imported only when a provider is built."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mmbridge.bounds import Count, Number
from mmbridge.registry import ProviderPlugin
from mmbridge.types import Task

__all__ = ["BUILTIN_CHECKPOINTS", "TorchOptions", "plugin", "resolve_checkpoint"]

BUILTIN_CHECKPOINTS = {"builtin:shapes": Path(__file__).resolve().parent / "checkpoints" / "shapes"}


class TorchOptions(BaseModel):
    """Options of ``type = "torch"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a checkpoint folder (model.safetensors + config.json), or builtin:shapes
    checkpoint: str = "builtin:shapes"
    #: auto (CUDA when available), cpu or cuda
    device: str = "auto"
    #: most requests answered in one forward pass
    max_batch: Count(1, 65_536) = 256
    #: how long the first request of a batch waits for company (at most a minute)
    max_wait_ms: Number(0, 60_000) = 5.0
    #: CPU threads a batch of 8 or more runs on (fewer: one); 0: one fewer than torch has, at least one
    threads: Count(0, 4_096) = 0
    #: captions: 1 is greedy decoding, more is beam search
    beam_size: int = Field(default=1, ge=1, le=16)


def resolve_checkpoint(name: str) -> Path:
    return BUILTIN_CHECKPOINTS.get(name, Path(name))


plugin = ProviderPlugin(
    factory="mmbridge_torch.provider:build",
    options=TorchOptions,
    description="a small local PyTorch model (CNN + Transformer fusion), trained here",
    tasks=frozenset(Task),
    requires=("torch", "safetensors"),
    package="mmbridge-torch",
)
