"""POST /v1/chat/completions: parse an OpenAI chat request, answer it with the client, reply in the wire format.

Every failure a client can cause is a 4xx in the OpenAI error format; anything else is a 500 in
the same format, logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from ..client import Client
from ..errors import (
    AuthenticationError,
    HTTPStatusError,
    ImageError,
    MMBridgeError,
    ProviderError,
    ProviderTimeoutError,
    RequestError,
    UnsupportedTaskError,
)
from ..types import Request as MMRequest
from ..types import Response, Task
from ..wire import WireError, answer_choices, chat_completion, error_body, read_messages
from .limits import Admission, Overloaded, ServeLimits

__all__ = ["APIError", "Chat", "send_json"]

log = logging.getLogger("mmbridge.serve")
#: bodies up to this size are parsed on the event loop (about 0.1 ms); larger ones in a thread
INLINE_BYTES = 64_000
#: on an answer sent before the whole body arrived: close, rather than hold the connection for the rest
CLOSE = {"connection": "close"}


class APIError(Exception):
    """An error to send in the OpenAI wire format."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, self.code, self.param)

    async def send(self, send: Any) -> None:
        await send_json(send, self.status, self.body(), self.headers)


async def send_json(send: Any, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """One whole JSON response through an ASGI ``send``."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        data = text.encode()
    except UnicodeEncodeError:  # a lone surrogate echoed from the request: send it \u-escaped
        data = json.dumps(payload, separators=(",", ":")).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    head += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})


def _load_json(chunks: list[bytes]) -> Any:
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "the body is not valid JSON") from None
    except RecursionError:
        raise APIError(400, "the body nests JSON too deeply") from None


def _from_mmbridge(exc: MMBridgeError) -> APIError:
    if isinstance(exc, (ImageError, RequestError)):
        return APIError(400, str(exc), code="invalid_image" if isinstance(exc, ImageError) else None)
    if isinstance(exc, UnsupportedTaskError):
        return APIError(400, str(exc), code="unsupported_task", param="model")
    if isinstance(exc, ProviderTimeoutError):
        return APIError(504, str(exc), kind="timeout")
    if isinstance(exc, HTTPStatusError) and exc.status_code == 429:
        return APIError(429, str(exc), kind="rate_limit_error", code=exc.code)
    if isinstance(exc, AuthenticationError):
        return APIError(502, "the upstream provider refused its credentials", kind="api_error")
    if isinstance(exc, ProviderError):
        return APIError(502, str(exc), kind="api_error")
    return APIError(500, str(exc), kind="api_error")


def _parse(body: Any, models: dict[str, Task], limits: ServeLimits) -> tuple[str, Task, str, str, tuple | None]:
    """(model id, task, text, image URL, choices) from a chat completion body, or an APIError."""
    if not isinstance(body, dict):
        raise APIError(400, "the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or model not in models:
        raise APIError(
            404,
            f"model {model!r} does not exist; GET /v1/models lists: {', '.join(models)}",
            code="model_not_found",
            param="model",
        )
    try:
        request = read_messages(body.get("messages"))
        choices = answer_choices(body.get("response_format"))
    except WireError as exc:
        raise APIError(400, str(exc), code=exc.code, param=exc.param) from None
    if len(request.images) != 1 or len(request.images) > limits.max_images:
        raise APIError(
            400, f"send exactly one image_url part (got {len(request.images)})", code="image_count", param="messages"
        )
    return model, models[model], request.prompt, request.images[0], choices


def _completion(model: str, response: Response, structured: bool) -> dict[str, Any]:
    if structured:
        content = json.dumps({"answer": response.answer}) if response.answer is not None else response.text
    elif response.task is Task.VERIFY and response.label is not None:
        content = "yes" if response.label else "no"
    elif response.task is Task.VQA and response.answer is not None:
        content = response.answer
    else:
        content = response.text
    usage = response.usage
    return chat_completion(model, content, usage.input_tokens or 0, usage.output_tokens or len(content.split()))


class Chat:
    """POST /v1/chat/completions as a plain ASGI handler.

    Served through FastAPI's router this route cost ~0.3 ms more a request (routing, dependency
    solving, Request and JSONResponse objects): a fifth of all the server's work per request with
    a fast provider. The other routes are FastAPI's.
    """

    def __init__(self, client: Client, models: dict[str, Task], limits: ServeLimits, admission: Admission) -> None:
        self.client, self.models, self.limits, self.admission = client, models, limits, admission

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        state = scope.setdefault("state", {})
        try:
            raw = await self._body(receive)
            if raw is None:
                state["status"] = 499  # the client went away: nobody to answer
                return
            payload = await self._admitted(scope, raw)
        except APIError as exc:
            await exc.send(send)
        except MMBridgeError as exc:
            await _from_mmbridge(exc).send(send)
        except asyncio.CancelledError:  # the shutdown limit passed with this request unfinished
            state["status"] = 503
            with contextlib.suppress(Exception):  # the connection may be gone already
                await APIError(503, "the server shut down before answering; retry", kind="api_error").send(send)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: the client still gets the wire format
            log.exception("internal error answering %s", state.get("model", "-"))
            await APIError(500, f"internal server error ({type(exc).__name__})", kind="api_error").send(send)
        else:
            await send_json(send, 200, payload)

    async def _body(self, receive: Any) -> list[bytes] | None:
        """The body's chunks as they came (joining a photo's megabyte is left to a thread too)."""
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.limits.read_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > self.limits.max_body_bytes:
                        raise APIError(
                            413,
                            f"the body is over {self.limits.max_body_bytes:,} bytes",
                            code="body_too_large",
                            headers=CLOSE,
                        )
                    if not message.get("more_body", False):
                        return chunks
        except TimeoutError:
            raise APIError(
                408,
                f"the request body did not arrive within {self.limits.read_timeout_s:g} s",
                code="timeout",
                headers=CLOSE,
            ) from None

    async def _admitted(self, scope: dict, raw: list[bytes]) -> dict[str, Any]:
        """The answer, within the request time limit and a place in the admission count."""
        limit = self.limits.request_timeout_s
        try:
            async with asyncio.timeout(limit):
                await self.admission.enter()
                start, took = time.perf_counter(), None
                try:
                    payload = await self.answer(scope, raw)
                    took = time.perf_counter() - start
                    return payload
                finally:
                    self.admission.leave(took)
        except Overloaded as exc:
            raise APIError(
                429,
                "the server is at capacity; retry after the time in the Retry-After header",
                kind="rate_limit_error",
                code="server_busy",
                headers={"retry-after": str(exc.retry_after_s), "retry-after-ms": str(exc.retry_after_s * 1000)},
            ) from None
        except TimeoutError:
            raise APIError(504, f"no answer within the server's {limit:g} s limit", kind="timeout") from None

    async def answer(self, scope: dict, raw: list[bytes]) -> dict[str, Any]:
        """The chat completion for one request body; raises APIError or MMBridgeError."""
        # a photo's body takes milliseconds to parse and base64-decode: a thread does that, as it
        # does a download; a small body is quicker to handle here than to hand over
        large = sum(map(len, raw)) > INLINE_BYTES
        body = await asyncio.to_thread(_load_json, raw) if large else _load_json(raw)
        model, task, text, url, choices = _parse(body, self.models, self.limits)
        scope["state"]["model"] = model
        if large or url.startswith(("http://", "https://")):
            image = await asyncio.to_thread(self.client.image_from_url, url)
        else:
            image = self.client.image_from_url(url)
        fields = (
            {"question": text or None, "choices": choices}
            if task is Task.VQA
            else ({"statement": text or None} if task is Task.VERIFY else {})
        )
        answer = await self.client.agenerate(MMRequest(task=task, image=image, **fields))
        return _completion(model, answer, structured=choices is not None)
