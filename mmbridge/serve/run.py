"""Run the OpenAI-compatible app with uvicorn: from the CLI, or in a thread for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..client import Client
from ..errors import ConfigError
from .app import ServeLimits, create_app
from .protocol import with_header_timeout

__all__ = ["in_thread", "running_server", "serve", "uvicorn_config"]

SWITCH_INTERVAL_S = 0.02  # how long a thread may keep the GIL while another waits (Python's default: 5 ms)


def _api_key(api_key_env: str | None) -> str | None:
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise ConfigError(f"--api-key-env {api_key_env}: that variable is empty; export the key clients must send")
    return key


def uvicorn_config(app: Any, limits: ServeLimits | None, **options: Any) -> Any:
    """uvicorn's config for ``app`` with the limits that live below the app: slow headers, shutdown."""
    import uvicorn

    limits = limits or ServeLimits()
    config = uvicorn.Config(
        app,
        log_level="warning",
        # mmbridge logs each request itself and never uses client addresses: uvicorn's proxy-header
        # rewriting and its Server header would only cost a little on every request
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=limits.shutdown_timeout_s,  # type: ignore[arg-type] - a float works
        **options,
    )
    config.load()  # resolves "auto" to the httptools (or h11) protocol class, which is then wrapped
    config.http_protocol_class = with_header_timeout(config.http_protocol_class, limits.read_timeout_s)
    return config


def serve(
    client: Client,
    name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key_env: str | None = None,
    limits: ServeLimits | None = None,
) -> None:
    """Serve until interrupted. Binds to 127.0.0.1 unless another host is given on purpose."""
    import uvicorn

    app = create_app(client, name, api_key=_api_key(api_key_env), limits=limits)
    server = uvicorn.Server(uvicorn_config(app, limits, host=host, port=port))
    # The event loop and a provider's batch worker (torch) share the GIL, and Python makes the thread
    # holding it hand it over after 5 ms whenever the other waits. Letting it keep the GIL for 20 ms
    # served 7-8% more requests a second under 64 clients (paired A/B runs, benchmarks/serve.py).
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        server.run()  # SIGTERM and Ctrl-C: finish what is in flight (within the limit), then return
    finally:
        sys.setswitchinterval(switch)


@contextlib.contextmanager
def running_server(
    client: Client,
    name: str,
    *,
    api_key: str | None = None,
    limits: ServeLimits | None = None,
    max_seconds: float = 300.0,
) -> Iterator[str]:
    """A server on 127.0.0.1 (a free port) in a background thread; yields its base URL (…/v1).

    It stops when the block ends, or by itself after ``max_seconds``.
    """
    import uvicorn

    app = create_app(client, name, api_key=api_key, limits=limits)
    server = uvicorn.Server(uvicorn_config(app, limits, host="127.0.0.1", port=0, lifespan="off"))
    with in_thread(server, max_seconds):
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"


@contextlib.contextmanager
def in_thread(server: Any, max_seconds: float, **run: Any) -> Iterator[None]:
    """Run a uvicorn ``server`` in a background thread for the block (``run``: its run() arguments),
    started before the block begins; it stops when the block ends, or by itself after ``max_seconds``."""
    thread = threading.Thread(target=server.run, kwargs=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError("the server did not start")
    stopper = threading.Timer(max_seconds, lambda: setattr(server, "should_exit", True))
    stopper.daemon = True
    stopper.start()
    try:
        yield
    finally:
        stopper.cancel()
        server.should_exit = True
        thread.join(timeout=10)
