"""mmbridge-openai: the ``openai`` provider. This module is light: the SDK is imported only when a provider is built."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmbridge.bounds import Count, Seconds
from mmbridge.registry import ProviderPlugin
from mmbridge.types import Task

__all__ = ["PLACEHOLDERS", "ModelPrice", "OpenAIOptions", "plugin"]

#: the fields each prompt template may use
PLACEHOLDERS = {
    "caption": (),
    "vqa": ("question",),
    "vqa_choices": ("question", "choices"),
    "verify": ("statement",),
}


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    #: the Batch API's prices; None: half the prices above (OpenAI's batch discount)
    batch_input_per_million: float | None = Field(default=None, ge=0)
    batch_output_per_million: float | None = Field(default=None, ge=0)


class OpenAIOptions(BaseModel):
    """Options of ``type = "openai"``; every one can be set in ``[providers.NAME]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "gpt-4o-mini"
    #: any OpenAI-compatible server; default: $OPENAI_BASE_URL, else the OpenAI API
    base_url: str | None = None
    #: the environment variable that holds the key (the key itself never goes in a config file)
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: Seconds = 60.0
    #: images are shrunk to fit this many pixels on their longer side, then sent as data URLs
    max_image_side: Count(16, 16_384) = 1024
    detail: Literal["low", "high", "auto"] = "auto"
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    max_output_tokens: Count(1, 1_000_000) = 300
    #: vqa with choices asks for a JSON answer whose schema enumerates the choices
    structured_output: bool = True
    #: per-task prompt templates replacing the built-in ones (keys: caption, vqa, vqa_choices, verify)
    prompts: dict[str, str] = Field(default_factory=dict)
    #: USD per million tokens by model name, merged over the dated defaults
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    #: ``mmbridge eval`` sends this provider's requests through the Batch API (half price, within
    #: 24 h); single calls (``ask``) stay synchronous
    batch: bool = False
    #: seconds between polls of a running batch (each wait varies by up to 20%)
    batch_poll_s: Seconds = 30.0
    #: a batch input file holds at most this many requests and this many MB (the API: 50,000, 200 MB)
    batch_max_requests: int = Field(default=50_000, ge=1, le=50_000)
    batch_max_mb: float = Field(default=190.0, gt=0, le=200)

    @field_validator("prompts")
    @classmethod
    def _templates_format(cls, prompts: dict[str, str]) -> dict[str, str]:
        """Each template must render with the fields its task has, so a typo fails at config check."""
        for key, template in prompts.items():
            if key not in PLACEHOLDERS:
                raise ValueError(f"unknown template {key!r}; the keys are {', '.join(PLACEHOLDERS)}")
            try:
                template.format(**dict.fromkeys(PLACEHOLDERS[key], "x"))
            except (KeyError, IndexError, ValueError) as exc:
                fields = ", ".join("{" + f + "}" for f in PLACEHOLDERS[key]) or "no fields"
                raise ValueError(
                    f"template {key!r} cannot be formatted ({type(exc).__name__}: {exc}); it may use {fields}, "
                    "and literal braces are written {{ }}"
                ) from None
        return prompts


plugin = ProviderPlugin(
    factory="mmbridge_openai.provider:build",
    options=OpenAIOptions,
    description="the OpenAI API and OpenAI-compatible servers",
    tasks=frozenset(Task),
    requires=("openai",),
    package="mmbridge-openai",
)
