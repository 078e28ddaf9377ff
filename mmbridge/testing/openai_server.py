"""A real OpenAI-compatible HTTP server on 127.0.0.1 that records requests and injects faults.

For tests and benchmarks of anything that speaks the OpenAI wire format (the ``openai``
provider, ``mmbridge serve`` clients). It binds to loopback only, answers at most
``max_requests`` requests and stops by itself after ``max_seconds``. Run it in a thread
(``with OpenAICompatibleServer() as server: ...``) or as a process
(``python -m mmbridge.testing.openai_server --latency 0.05``, which prints its URL).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..wire import ChatRequest, WireError, answer_choices, chat_completion, error_body, read_messages
from .batch_api import BatchFault, BatchStore, BatchTiming, parse_multipart

__all__ = [
    "BatchFault",
    "BatchTiming",
    "Fault",
    "FaultMix",
    "OpenAICompatibleServer",
    "RecordedRequest",
    "default_responder",
]


@dataclass(frozen=True)
class Fault:
    """One injected failure: an error status, a dropped connection, a hang, or malformed JSON."""

    kind: str  # "status" | "drop" | "hang" | "malformed"
    status: int = 500
    retry_after_s: float | None = None
    code: str | None = None
    message: str = "injected fault"
    hang_s: float = 5.0

    @classmethod
    def rate_limit(cls, retry_after_s: float | None = None) -> Fault:
        return cls("status", 429, retry_after_s, "rate_limit_exceeded", "Rate limit reached")

    @classmethod
    def quota(cls) -> Fault:
        return cls("status", 429, None, "insufficient_quota", "You exceeded your current quota")

    @classmethod
    def http(cls, status: int, message: str = "injected fault", code: str | None = None) -> Fault:
        return cls("status", status, None, code, message)


@dataclass
class FaultMix:
    """Random faults per attempt, for soak tests; attempts from ``clean_after`` on always succeed."""

    rate_limit: float = 0.0
    retry_after_s: tuple[float, float] = (0.05, 0.2)
    server_error: float = 0.0
    drop: float = 0.0
    hang: float = 0.0
    hang_s: float = 2.0
    clean_after: int | None = None
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, attempt: int) -> Fault | None:
        if self.clean_after is not None and attempt >= self.clean_after:
            return None
        r = self.rng.random()
        for share, make in (
            (self.rate_limit, lambda: Fault.rate_limit(self.rng.uniform(*self.retry_after_s))),
            (self.server_error, lambda: Fault.http(500, "The server had an error")),
            (self.drop, lambda: Fault("drop")),
            (self.hang, lambda: Fault("hang", hang_s=self.hang_s)),
        ):
            if r < share:
                return make()
            r -= share
        return None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: dict[str, Any] | None
    authorized: bool
    attempt: int  # 1 for the first time this prompt + image arrived, 2 for the next...
    received_at: float  # time.monotonic() when it arrived

    @property
    def prompt(self) -> str:
        return _read(self.body or {}).prompt

    @property
    def image_urls(self) -> list[str]:
        return _read(self.body or {}).images


def _read(body: dict[str, Any]) -> ChatRequest:
    """The request as serve reads it (``mmbridge.wire``); a body that does not follow the format reads as empty."""
    try:
        return read_messages(body.get("messages"))
    except WireError:
        return ChatRequest([], [])


def default_responder(body: dict[str, Any]) -> str:
    """A structured answer (the first enum value) when asked for one, else a final 'Answer:' line."""
    choices = answer_choices(body.get("response_format"))
    if choices:
        return json.dumps({"answer": choices[0]})
    text = _read(body).prompt.lower()
    if "statement" in text:
        return "The statement holds.\nAnswer: yes"
    if "question" in text:
        return "Looking at the image.\nAnswer: red"
    return "a red circle next to a blue square"


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the stdlib's 5 resets connections when 50 clients connect at once


class OpenAICompatibleServer:
    """``POST /v1/chat/completions``, ``GET /v1/models``, the Files and Batches endpoints
    (:mod:`mmbridge.testing.batch_api`) and ``GET /stats`` on 127.0.0.1."""

    def __init__(
        self,
        *,
        responder: Callable[[dict[str, Any]], str] = default_responder,
        api_key: str | None = None,
        latency_s: float = 0.0,
        faults: Sequence[Fault] = (),
        mix: FaultMix | None = None,
        max_requests: int = 100_000,
        max_seconds: float = 600.0,
        port: int = 0,
        batch_timing: BatchTiming | None = None,
    ) -> None:
        self.responder = responder
        self.api_key = api_key
        self.latency_s = latency_s
        self.mix = mix
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.requests: list[RecordedRequest] = []
        self.attempts: Counter[str] = Counter()
        self._faults: deque[Fault] = deque(faults)
        self.batches = BatchStore(self._completion, batch_timing or BatchTiming())
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._httpd = _Server(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client, ending in /v1."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def fail_next(self, *faults: Fault) -> None:
        """Inject these faults into the next requests, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def start(self) -> OpenAICompatibleServer:
        serve = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        watchdog = threading.Thread(target=self._watchdog, daemon=True)
        self._threads = [serve, watchdog]
        for thread in self._threads:
            thread.start()
        return self

    def _watchdog(self) -> None:
        if not self._stopped.wait(self.max_seconds):
            self.stop()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()  # releases hanging handlers too
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> OpenAICompatibleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling -----------------------------------------------------------------------

    def _record(
        self, method: str, path: str, body: dict[str, Any] | None, authorized: bool
    ) -> tuple[RecordedRequest, Fault | None]:
        key = hashlib.sha256(json.dumps(body.get("messages") if body else None, sort_keys=True).encode()).hexdigest()
        with self._lock:
            self.attempts[key] += 1
            record = RecordedRequest(method, path, body, authorized, self.attempts[key], time.monotonic())
            self.requests.append(record)
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self.mix is not None and path.endswith("/chat/completions"):
                fault = self.mix.draw(record.attempt)
            over = len(self.requests) > self.max_requests
        if over:
            fault = Fault.http(503, "request budget of the test server used up")
            threading.Thread(target=self.stop, daemon=True).start()
        return record, fault

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.responder(body)
        request = _read(body)
        prompt_tokens = len(request.prompt) // 4 + 85 * len(request.images)
        completion_tokens = max(1, len(text) // 4)
        return chat_completion(body.get("model", "unknown"), text, prompt_tokens, completion_tokens)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(
                self,
                status: int,
                payload: Any,
                headers: dict[str, str] | None = None,
                content_type: str = "application/json",
            ) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                # head and body in one write: two small writes meet delayed ACKs and cost ~40 ms
                self._headers_buffer.append(b"\r\n")
                self.wfile.write(b"".join(self._headers_buffer) + data)
                self._headers_buffer = []

            def _drop(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def _authorized(self) -> bool:
                return server.api_key is None or self.headers.get("Authorization") == f"Bearer {server.api_key}"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                path = self.path.split("?")[0].rstrip("/")
                parts = path.split("/")
                if path.endswith("/stats"):
                    submitted = server.batches.submitted
                    self._send(
                        200,
                        {
                            "requests": len(server.requests),
                            "max_attempts": max(server.attempts.values(), default=0),
                            "batch_lines": sum(submitted.values()),
                            "batch_lines_max": max(submitted.values(), default=0),
                            "batch_input_bytes": server.batches.input_sizes(),
                            # when each chat completion arrived (time.monotonic(), this process's clock)
                            "arrivals": [r.received_at for r in server.requests if r.path.endswith("/completions")],
                        },
                    )
                elif self.path.rstrip("/").endswith("/models"):
                    self._send(
                        200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "test"}]}
                    )
                elif not self._authorized():
                    self._send(401, error_body("Incorrect API key provided: sk-te****1234.", code="invalid_api_key"))
                elif "files" in parts and path.endswith("/content"):
                    content = server.batches.file_content(parts[-2])
                    if content is None:
                        self._send(404, error_body(f"No such File object: {parts[-2]}"))
                    else:
                        self._send(200, content, content_type="application/octet-stream")
                elif path.endswith("/batches"):
                    self._send(200, server.batches.list())
                elif "batches" in parts:
                    self._send(*server.batches.retrieve(parts[-1]))
                else:
                    self._send(404, error_body(f"no route {self.path}"))

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def do_POST(self) -> None:  # noqa: N802
                raw = self._read_body()
                multipart = self.headers.get("Content-Type", "").startswith("multipart/form-data")
                try:
                    body = None if multipart else json.loads(raw)
                except json.JSONDecodeError:
                    body = None
                authorized = self._authorized()
                _, fault = server._record("POST", self.path, body if isinstance(body, dict) else None, authorized)
                if server.latency_s:
                    time.sleep(server.latency_s)
                if fault is not None:
                    self._inject(fault)
                elif not authorized:
                    self._send(401, error_body("Incorrect API key provided: sk-te****1234.", code="invalid_api_key"))
                elif multipart and self.path.rstrip("/").endswith("/files"):
                    form = parse_multipart(self.headers["Content-Type"], raw)
                    filename, content = form.get("file", (None, b""))
                    purpose = form.get("purpose", (None, b""))[1].decode()
                    self._send(200, server.batches.add_file(filename or "upload.jsonl", purpose, content))
                elif self.path.rstrip("/").endswith("/cancel"):
                    self._send(*server.batches.cancel(self.path.rstrip("/").split("/")[-2]))
                elif isinstance(body, dict) and self.path.rstrip("/").endswith("/batches"):
                    self._send(*server.batches.create(body))
                elif not isinstance(body, dict) or not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(400, error_body("expected a JSON chat completion request"))
                else:
                    self._send(200, server._completion(body))

            def _inject(self, fault: Fault) -> None:
                if fault.kind == "drop":
                    self._drop()
                elif fault.kind == "hang":
                    server._stopped.wait(fault.hang_s)
                    self._drop()
                elif fault.kind == "malformed":
                    self._send(200, b'{"id": "chatcmpl-broken", "choices": [')
                else:
                    headers = {}
                    if fault.retry_after_s is not None:
                        headers = {
                            "retry-after-ms": str(int(fault.retry_after_s * 1000)),
                            "retry-after": f"{fault.retry_after_s:g}",
                        }
                    self._send(fault.status, error_body(fault.message, "error", fault.code), headers)

        return Handler


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible test server on 127.0.0.1 (prints its URL)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=0.0)
    parser.add_argument("--server-error", type=float, default=0.0)
    parser.add_argument("--drop", type=float, default=0.0)
    parser.add_argument("--hang", type=float, default=0.0)
    parser.add_argument("--hang-s", type=float, default=2.0)
    parser.add_argument("--clean-after", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--batch-seconds", type=float, default=0.5, help="how long a batch is in progress")
    args = parser.parse_args(argv)
    mix = FaultMix(
        args.rate_limit, (0.05, 0.2), args.server_error, args.drop, args.hang, args.hang_s, args.clean_after, args.seed
    )
    server = OpenAICompatibleServer(
        latency_s=args.latency,
        mix=mix,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
        port=args.port,
        batch_timing=BatchTiming(in_progress_s=args.batch_seconds),
    ).start()
    print(server.url, flush=True)
    try:
        server._stopped.wait()
    except KeyboardInterrupt:
        server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
