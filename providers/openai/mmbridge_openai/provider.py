"""OpenAIProvider: chat completions with an image, through the official SDK (its retries off)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import openai
from pydantic import SecretStr

from mmbridge.errors import ConfigError
from mmbridge.extract import response_from_text
from mmbridge.offline import OfflineItem, OfflineSettings
from mmbridge.provider import BaseProvider
from mmbridge.types import Request, Response, Task, Usage

from . import OpenAIOptions
from .clients import SDKClients
from .errors import status_error, translate_errors
from .prices import cost_usd, price_for
from .prompts import render, templates_fingerprint

__all__ = ["OpenAIProvider", "build"]

#: how a picture that must be shrunk is re-encoded (mmbridge.Image.to_data_url); part of the identity
IMAGE_ENCODING = "jpeg-from-jpeg-q90"

OPENAI_URL = "https://api.openai.com/v1"


def _resolve_base_url(options: OpenAIOptions) -> str:
    return (options.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")


def _answer_schema(choices: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"answer": {"type": "string", "enum": list(choices)}},
                "required": ["answer"],
                "additionalProperties": False,
            },
        },
    }


class OpenAIProvider(BaseProvider):
    """Any OpenAI-compatible chat completions endpoint that accepts images."""

    capabilities = frozenset(Task)

    def __init__(self, name: str, options: OpenAIOptions) -> None:
        super().__init__(name)
        self.options = options
        self.model = options.model
        self.base_url = _resolve_base_url(options)
        key = os.environ.get(options.api_key_env)
        if not key:
            if self.base_url == OPENAI_URL:
                raise ConfigError(
                    f"${options.api_key_env} is not set: export your OpenAI API key in it, set api_key_env "
                    "in mmbridge.toml to the variable that holds it, or try --provider fake"
                )
            key = "unused"  # local servers (vLLM, Ollama, mmbridge serve) often need none; the SDK needs one
        self._key = SecretStr(key)
        self._price = price_for(options.model, options.prices)
        self._sdk = SDKClients(self.new_client, name)

    # -- the surface the Batch API code uses (surface.BatchSurface) -----------------------------

    def new_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._key.get_secret_value(),
            base_url=self.base_url,
            timeout=self.options.timeout_s,
            max_retries=0,  # mmbridge's Retrying is the one retry layer
        )

    @property
    def identity(self) -> dict[str, Any]:
        o = self.options
        return {
            "type": "openai",
            "model": o.model,
            "endpoint": hashlib.sha256(self.base_url.encode()).hexdigest()[:16],
            "prompts": templates_fingerprint(o.prompts),
            "temperature": o.temperature,
            "max_output_tokens": o.max_output_tokens,
            "max_image_side": o.max_image_side,
            "image_encoding": IMAGE_ENCODING,
            "detail": o.detail,
            "structured_output": o.structured_output,
        }

    def translating(self) -> AbstractContextManager[None]:
        return translate_errors(self.name, [self._key.get_secret_value()], self.options.timeout_s)

    def status_error(self, status: int, body: Any) -> Exception:
        return status_error(self.name, status, body, [self._key.get_secret_value()])

    def request_body(self, request: Request) -> dict[str, Any]:
        o = self.options
        image_url = request.image.to_data_url(max_side=o.max_image_side)
        content = [
            {"type": "text", "text": render(request, o.prompts)},
            {"type": "image_url", "image_url": {"url": image_url, "detail": o.detail}},
        ]
        payload: dict[str, Any] = {"model": o.model, "messages": [{"role": "user", "content": content}]}
        # api.openai.com wants max_completion_tokens; many compatible servers only know max_tokens
        payload["max_completion_tokens" if self.base_url == OPENAI_URL else "max_tokens"] = o.max_output_tokens
        if o.temperature is not None:
            payload["temperature"] = o.temperature
        if self._structured(request):
            payload["response_format"] = _answer_schema(request.choices or ())
        return payload

    def _structured(self, request: Request) -> bool:
        return request.task is Task.VQA and bool(request.choices) and self.options.structured_output

    async def _generate(self, request: Request) -> Response:
        # a large picture may be decoded, shrunk and re-encoded here: tens of ms, so not on the loop
        payload = (
            await asyncio.to_thread(self.request_body, request) if request.image.heavy else self.request_body(request)
        )
        with self.translating():
            return await self._sdk.chat(payload, lambda completion: self._response(request, completion))

    def read_body(self, request: Request, body: dict[str, Any]) -> Response:
        """The Response for a Batch API result line's body, by the synchronous path's rules, at batch prices."""
        from openai.types.chat import ChatCompletion

        return self._response(request, ChatCompletion.model_validate(body), batch=True)

    def _response(self, request: Request, completion: Any, *, batch: bool = False) -> Response:
        message = completion.choices[0].message if completion.choices else None
        text = (message.content or message.refusal or "") if message is not None else ""
        usage = completion.usage
        input_tokens = usage.prompt_tokens if usage else None
        output_tokens = usage.completion_tokens if usage else None
        fields: dict[str, Any] = {
            "provider": self.name,
            "model": completion.model or self.model,
            "usage": Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd(self._price, input_tokens, output_tokens, batch=batch),
            ),
        }
        if self._structured(request):
            fields["answer"] = _structured_answer(text, request.choices or ())
        return response_from_text(request, text, **fields)

    @property
    def offline_by_default(self) -> bool:
        return self.options.batch

    def answer_offline(
        self, items: Mapping[str, OfflineItem], settings: OfflineSettings
    ) -> AsyncIterator[list[tuple[str, Response | Exception]]]:
        """Answer ``items`` through the Batch API (see :mod:`mmbridge_openai.batch_job`)."""
        from .batch_job import BatchJob

        return BatchJob(self, settings).run(items)

    async def offline_status(self, folder: Path, *, cancel: bool = False) -> list[dict[str, Any]]:
        from .batch_admin import batch_status

        return await batch_status(self, folder, cancel=cancel)

    async def aclose(self) -> None:
        await self._sdk.aclose()

    def __repr__(self) -> str:
        return f"OpenAIProvider(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"


def _structured_answer(text: str, choices: tuple[str, ...]) -> str | None:
    """The enum value of a structured answer, or None when the JSON is not what the schema promised."""
    try:
        answer = json.loads(text).get("answer")
    except (json.JSONDecodeError, AttributeError):
        return None
    return answer if answer in choices else None


def build(name: str, options: OpenAIOptions) -> OpenAIProvider:
    return OpenAIProvider(name, options)
