"""The one place where the openai SDK's exceptions become mmbridge errors, with secrets scrubbed."""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mmbridge.errors import (
    AuthenticationError,
    HTTPStatusError,
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitError,
)

__all__ = ["retry_after_s", "scrub", "status_error", "translate_errors"]

_KEY_LIKE = re.compile(r"\b(sk|rk|pk|sess)-[A-Za-z0-9_\-*.]{4,}")
_MAX_MESSAGE = 300


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """One line, at most 300 characters, with the given secrets and anything key-shaped masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _KEY_LIKE.sub(lambda m: f"{m.group(1)}-***", text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a server asks for: ``retry-after-ms`` (OpenAI's), else ``retry-after`` (seconds or a date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        with contextlib.suppress(ValueError):
            return max(float(ms) / 1000, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _error_body(body: Any) -> tuple[str | None, str | None]:
    """(message, code) from an OpenAI-style ``{"error": {...}}`` body, or its bare inner object."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("message"), inner.get("code") or inner.get("type")
        if isinstance(inner, str):
            return inner, None
    return None, None


def status_error(
    provider: str, status: int, body: Any, secrets: Iterable[str] = (), headers: Mapping[str, str] | None = None
) -> HTTPStatusError:
    """The mmbridge error for an HTTP error status and its OpenAI-style body."""
    message, code = _error_body(body)
    text = scrub(message or f"status {status}", secrets)
    cls = AuthenticationError if status in (401, 403) else RateLimitError if status == 429 else HTTPStatusError
    if status in (401, 403):
        text += "; check the API key variable (api_key_env) and the model's access"
    wait = retry_after_s(headers) if headers is not None else None
    return cls(text, status_code=status, provider=provider, retry_after_s=wait, code=code)


@contextlib.contextmanager
def translate_errors(provider: str, secrets: Iterable[str], timeout_s: float) -> Iterator[None]:
    """Raise mmbridge errors for SDK errors; nothing of the SDK's (its request, headers) is chained."""
    import openai

    secrets = tuple(secrets)
    try:
        yield
    except openai.APITimeoutError:
        raise ProviderTimeoutError(f"no answer within {timeout_s:g} s", provider=provider) from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        reason = scrub(f"{type(cause).__name__}: {cause}", secrets)
        raise ProviderConnectionError(f"connection failed ({reason})", provider=provider) from None
    except openai.APIStatusError as exc:
        body = exc.body if _error_body(exc.body)[0] else {"message": exc.response.reason_phrase or "error"}
        raise status_error(provider, exc.status_code, body, secrets, exc.response.headers) from None
    except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
        raise ProviderResponseError(f"unreadable answer ({scrub(str(exc), secrets)})", provider=provider) from None
    except openai.OpenAIError as exc:
        raise ProviderError(scrub(f"{type(exc).__name__}: {exc}", secrets), provider=provider) from None
