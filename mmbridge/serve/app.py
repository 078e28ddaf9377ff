"""An OpenAI-compatible HTTP API in front of any provider (FastAPI), so any OpenAI client can use it.

Which task a chat request asks for is decided by its ``model`` id, never by its wording
(``GET /v1/models`` lists them):

    NAME            vqa: the text is the question; a json_schema response_format whose ``answer``
                    property is an enum makes it a closed answer set (the reply is ``{"answer": ...}``)
    NAME:vqa        the same
    NAME:verify     the text is a statement; the reply is "yes" or "no"
    NAME:caption    the text is ignored; the reply is one sentence

A request carries exactly one image, as an ``image_url`` part with a base64 ``data:`` URL
(http(s) URLs only when the config allows remote images; never a path: the server does not open
its own files for a client). Overload, slow clients and slow answers are bounded by
:class:`ServeLimits`.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..client import Client
from ..provider import concurrency_of
from ..types import Task
from .chat import CLOSE, APIError, Chat
from .limits import DEFAULT_CONCURRENCY, Admission, ServeLimits

__all__ = ["ServeLimits", "create_app"]

log = logging.getLogger("mmbridge.serve")
CHAT_PATH = "/v1/chat/completions"
TASK_SUFFIXES = {"": Task.VQA, ":vqa": Task.VQA, ":verify": Task.VERIFY, ":caption": Task.CAPTION}


def _json(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def create_app(client: Client, name: str, *, api_key: str | None = None, limits: ServeLimits | None = None) -> FastAPI:
    """The app serving ``client``'s provider as ``name``; ``api_key`` turns on bearer-token auth."""
    limits = limits or ServeLimits()
    concurrency = limits.max_concurrency or concurrency_of(client.provider) or DEFAULT_CONCURRENCY
    admission = Admission(concurrency, limits.max_waiting)
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
        return _json(APIError(404, f"no route {request.method} {request.url.path}", code="not_found"))

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Any) -> JSONResponse:
        return _json(APIError(405, f"{request.method} is not allowed on {request.url.path}"))

    return _Guard(app, Chat(client, models, limits, admission), api_key, limits)  # type: ignore[return-value]


class _Guard:
    """Plain ASGI middleware: auth, the body cap, and one log line per request.

    Starlette's decorator middleware (BaseHTTPMiddleware) cost ~3 ms a request under load here,
    more than everything else the server does; this costs microseconds.
    """

    def __init__(self, app: FastAPI, chat: Chat, api_key: str | None, limits: ServeLimits) -> None:
        self.app, self.chat, self.api_key, self.limits = app, chat, api_key, limits

    def __getattr__(self, name: str) -> Any:  # routes, state, ... of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        status = [500]

        async def record(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            problem = self._refuse(scope["path"], headers)
            if problem is None and scope["path"] == CHAT_PATH and scope["method"] != "POST":
                problem = APIError(405, f"{scope['method']} is not allowed on {CHAT_PATH}; use POST")
            if problem is not None:
                await problem.send(record)
            elif scope["path"] == CHAT_PATH:
                await self.chat(scope, receive, record)
            else:
                await self.app(scope, receive, record)
        finally:  # every request gets its line, whatever happened to it
            log.info(
                "%s %s model=%s %d %.1f ms",
                scope["method"],
                scope["path"],
                state.get("model", "-"),
                state.get("status", status[0]),
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
            return APIError(
                413, f"the body is over {self.limits.max_body_bytes:,} bytes", code="body_too_large", headers=CLOSE
            )
        return None
