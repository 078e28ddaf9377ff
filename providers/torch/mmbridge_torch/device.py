"""Where the local model runs: the device a name means (checked to exist), and when bf16 autocast pays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mmbridge.errors import ConfigError

__all__ = ["autocast", "bf16_helps", "pick_device"]


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
