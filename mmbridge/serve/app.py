"""An OpenAI-compatible HTTP API in front of any provider (FastAPI), so any OpenAI client can use it.

Which task a chat request asks for is decided by its ``model`` id, never by its wording
(``GET /v1/models`` lists them):

    NAME            vqa: the text is the question; a json_schema response_format whose ``answer``
                    property is an enum makes it a closed answer set (the reply is ``{"answer": ...}``)
    NAME:vqa        the same
    NAME:verify     the text is a statement; the reply is "yes" or "no"
    NAME:caption    the text is ignored; the reply is one sentence

A request carries exactly one image, as an ``image_url`` part with a base64 ``data:`` URL
(http(s) URLs only when the config allows remote images).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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
from ..wire import chat_completion, error_body

__all__ = ["ServeLimits", "create_app"]

log = logging.getLogger("mmbridge.serve")
CHAT_PATH = "/v1/chat/completions"
TASK_SUFFIXES = {"": Task.VQA, ":vqa": Task.VQA, ":verify": Task.VERIFY, ":caption": Task.CAPTION}


class ServeLimits:
    def __init__(self, max_body_bytes: int = 20_000_000, max_images: int = 1) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_images = max_images


class APIError(Exception):
    """An error to send in the OpenAI wire format."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, self.code, self.param)


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


def _parse(body: Any, models: dict[str, Task], limits: ServeLimits) -> tuple[str, Task, str, list[str], tuple | None]:
    """(model id, task, text, image URLs, choices) from a chat completion body, or an APIError."""
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
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list", param="messages")
    texts, images = [], []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "developer"):
            raise APIError(400, "each message needs a role of system, user, assistant or developer", param="messages")
        if message["role"] != "user":
            continue
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise APIError(400, "message content must be a string or a list of parts", param="messages")
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif (
                kind == "image_url"
                and isinstance(part.get("image_url"), dict)
                and isinstance(part["image_url"].get("url"), str)
            ):
                images.append(part["image_url"]["url"])
            else:
                raise APIError(
                    400,
                    f"unsupported content part {kind!r}: send text and image_url parts",
                    code="unsupported_content",
                    param="messages",
                )
    if len(images) != 1 or len(images) > limits.max_images:
        raise APIError(
            400, f"send exactly one image_url part (got {len(images)})", code="image_count", param="messages"
        )
    choices = None
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        try:
            enum = fmt["json_schema"]["schema"]["properties"]["answer"]["enum"]
            choices = tuple(str(c) for c in enum)
        except (KeyError, TypeError):
            raise APIError(
                400, "a json_schema response_format must have an enum 'answer' property", param="response_format"
            ) from None
    return model, models[model], "\n".join(texts).strip(), images, choices


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


class _Chat:
    """POST /v1/chat/completions as a plain ASGI handler.

    Served through FastAPI's router this route cost ~0.3 ms more a request (routing, dependency
    solving, Request and JSONResponse objects): a fifth of all the server's work per request with
    a fast provider. The other routes are FastAPI's.
    """

    def __init__(self, client: Client, models: dict[str, Task], limits: ServeLimits) -> None:
        self.client, self.models, self.limits = client, models, limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            raw = await self._body(receive)
            if raw is None:
                return  # the client went away
            status, payload = 200, await self.answer(scope, raw)
        except APIError as exc:
            status, payload = exc.status, exc.body()
        except MMBridgeError as exc:
            error = _from_mmbridge(exc)
            status, payload = error.status, error.body()
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _body(self, receive: Any) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limits.max_body_bytes:
                raise APIError(413, f"the body is over {self.limits.max_body_bytes:,} bytes", code="body_too_large")
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def answer(self, scope: dict, raw: bytes) -> dict[str, Any]:
        """The chat completion for one request body; raises APIError or MMBridgeError."""
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise APIError(400, "the body is not valid JSON") from None
        model, task, text, images, choices = _parse(body, self.models, self.limits)
        scope.setdefault("state", {})["model"] = model
        image = self.client.image(images[0])
        fields = (
            {"question": text or None, "choices": choices}
            if task is Task.VQA
            else ({"statement": text or None} if task is Task.VERIFY else {})
        )
        answer = await self.client.agenerate(MMRequest(task=task, image=image, **fields))
        return _completion(model, answer, structured=choices is not None)


def create_app(client: Client, name: str, *, api_key: str | None = None, limits: ServeLimits | None = None) -> FastAPI:
    """The app serving ``client``'s provider as ``name``; ``api_key`` turns on bearer-token auth."""
    limits = limits or ServeLimits()
    tasks = client.provider.capabilities
    models = {f"{name}{suffix}": task for suffix, task in TASK_SUFFIXES.items() if task in tasks}
    app = FastAPI(title="mmbridge", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "provider": name}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "owned_by": "mmbridge", "task": t.value} for m, t in models.items()],
        }

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Any) -> JSONResponse:
        return APIError(404, f"no route {request.method} {request.url.path}", code="not_found").response()

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Any) -> JSONResponse:
        return APIError(405, f"{request.method} is not allowed on {request.url.path}").response()

    return _Guard(app, _Chat(client, models, limits), api_key, limits)  # type: ignore[return-value]


class _Guard:
    """Plain ASGI middleware: auth, the body cap, and one log line per request.

    Starlette's decorator middleware (BaseHTTPMiddleware) cost ~3 ms a request under load here,
    more than everything else the server does; this costs microseconds.
    """

    def __init__(self, app: FastAPI, chat: _Chat, api_key: str | None, limits: ServeLimits) -> None:
        self.app, self.chat, self.api_key, self.limits = app, chat, api_key, limits

    def __getattr__(self, name: str) -> Any:  # routes, state, ... of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def record(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        problem = self._refuse(scope["path"], headers)
        if problem is None and scope["path"] == CHAT_PATH and scope["method"] != "POST":
            problem = APIError(405, f"{scope['method']} is not allowed on {CHAT_PATH}; use POST")
        if problem is not None:
            await problem.response()(scope, receive, record)
        elif scope["path"] == CHAT_PATH:
            await self.chat(scope, receive, record)
        else:
            await self.app(scope, receive, record)
        model = scope.get("state", {}).get("model", "-")
        log.info(
            "%s %s model=%s %d %.1f ms",
            scope["method"],
            scope["path"],
            model,
            status[0],
            (time.perf_counter() - start) * 1000,
        )

    def _refuse(self, path: str, headers: dict[str, str]) -> APIError | None:
        if self.api_key is not None and path.startswith("/v1/"):
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
                return APIError(
                    401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key"
                )
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            return APIError(413, f"the body is over {self.limits.max_body_bytes:,} bytes", code="body_too_large")
        return None
