"""Loading an image-text-to-text model and its processor, with one line for each way it can fail,
and the revision that identifies its weights in the cache key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import xxhash

from mmbridge.errors import ConfigError

from . import HFOptions

__all__ = ["HFLoadError", "Loaded", "load"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: weight and config files whose bytes make a local folder's revision
CONTENT = ("*.json", "*.safetensors", "*.bin", "*.jinja", "*.model")


class HFLoadError(ConfigError):
    """The model or its processor cannot be loaded as configured (not found, unreachable, not an
    image-text-to-text model, no chat template): a mistake to fix before any request."""


@dataclass
class Loaded:
    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    #: the hub commit, or for a local folder a hash of its files
    revision: str


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise HFLoadError("device 'cuda': no CUDA device is available here; use device = 'cpu' or 'auto'")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise HFLoadError(f"device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def folder_revision(folder: Path) -> str:
    """A hash of the folder's weight, config and template files (XXH3-128 of their bytes)."""
    digest = xxhash.xxh3_128()
    for pattern in CONTENT:
        for path in sorted(folder.glob(pattern)):
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 24), b""):
                    digest.update(chunk)
    return "local-" + digest.hexdigest()[:16]


def _source(options: HFOptions) -> tuple[str, bool]:
    """(what transformers loads, whether it is a local folder)."""
    path = Path(options.model).expanduser()
    if path.is_dir():
        return str(path), True
    if options.model.startswith((".", "/", "~")) or path.exists() or options.model.count("/") > 1:
        raise HFLoadError(
            f"model {options.model!r} is not a folder; give a folder saved with save_pretrained or a hub id"
        )
    return options.model, False


def load(options: HFOptions) -> Loaded:
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

    device = _device(options.device)
    dtype = DTYPES.get(options.dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    source, local = _source(options)
    common: dict[str, Any] = {"revision": options.revision, "local_files_only": _offline() and not local}
    try:
        config = AutoConfig.from_pretrained(source, **common)
        if type(config) not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
            raise HFLoadError(
                f"model {source!r} ({config.model_type}) is not an image-text-to-text model "
                "(AutoModelForImageTextToText cannot load it); pick a vision-language model such as SmolVLM or LLaVA"
            )
        processor = AutoProcessor.from_pretrained(source, **common)
        extra = {"attn_implementation": options.attn_implementation} if options.attn_implementation else {}
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, **common, **extra)
    except OSError as exc:
        where = "a local folder (model = '/path/saved/with/save_pretrained')"
        if _offline() and not local:
            raise HFLoadError(
                f"model {source!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                f"download it where the hub can be reached, or point model at {where}"
            ) from None
        raise HFLoadError(
            f"model {source!r} could not be loaded ({_first_line(exc)}); check the id, or point model at {where}"
        ) from None
    except ValueError as exc:
        raise HFLoadError(f"model {source!r}: {_first_line(exc)}") from None
    if not getattr(processor, "chat_template", None):
        raise HFLoadError(
            f"model {source!r} has a processor without a chat template; set the processor's "
            "chat_template (processor.save_pretrained writes it) or pick an instruction-tuned model"
        )
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None or (tokenizer.pad_token_id is None and tokenizer.eos_token_id is None):
        raise HFLoadError(f"model {source!r}: its processor has no tokenizer with a pad or end token")
    if tokenizer.pad_token_id is None:  # batches are padded; models trained without a pad token pad with the end
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    commit = getattr(config, "_commit_hash", None)
    revision = folder_revision(Path(source)) if local else str(commit or options.revision or "main")
    return Loaded(model, processor, device, dtype, revision)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
