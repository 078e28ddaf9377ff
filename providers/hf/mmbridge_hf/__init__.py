"""mmbridge-hf: the ``hf`` provider, a pretrained image-text-to-text model of Hugging Face transformers
in this process. This module is light: torch and transformers are imported only when a provider is built."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mmbridge.bounds import Count, Number
from mmbridge.registry import ProviderPlugin
from mmbridge.types import Task

__all__ = ["HFOptions", "plugin"]


class HFOptions(BaseModel):
    """Options of ``type = "hf"``."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    #: a hub id (downloaded by transformers on first use) or a local folder saved with save_pretrained
    model: str
    #: a branch, tag or commit of a hub model
    revision: str | None = None
    #: auto (CUDA when available), cpu or cuda
    device: str = "auto"
    #: auto: bfloat16 on CUDA, float32 on the CPU
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    #: the longest caption or open answer, in tokens
    max_new_tokens: Count(1, 4096) = 32
    #: attention kernel (transformers' own choice when unset): eager, sdpa, flash_attention_2
    attn_implementation: str | None = None
    #: most requests (or, for choices, choice sequences) in one forward pass
    batch_size: Count(1, 1024) = 8
    #: how long the first request of a batch waits for company
    max_wait_ms: Number(0, 60_000) = 5.0
    #: prompt templates by key (caption, vqa, vqa_choices, verify), replacing the defaults
    prompts: dict[str, str] = Field(default_factory=dict)


plugin = ProviderPlugin(
    factory="mmbridge_hf.provider:build",
    options=HFOptions,
    description="a pretrained vision-language model in this process (Hugging Face transformers)",
    tasks=frozenset(Task),
    requires=("torch", "transformers"),
    package="mmbridge-hf",
)
