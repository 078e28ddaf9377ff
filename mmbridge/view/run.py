"""Run the viewer with uvicorn: from the CLI until interrupted, or in a thread for tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError
from ..serve.run import in_thread
from .app import create_app

__all__ = ["running_viewer", "view"]


def _server(root: Path, host: str, port: int) -> tuple[object, socket.socket]:
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog from here, before uvicorn takes the socket
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port or --host") from None
    config = uvicorn.Config(create_app(root), log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config), sock


def view(root: Path, *, host: str = "127.0.0.1", port: int = 8765, ready: object = None) -> None:
    """Serve the viewer over ``root`` until interrupted; ``ready(url)`` is called once it listens."""
    server, sock = _server(root, host, port)
    bound = sock.getsockname()[1]
    if callable(ready):
        ready(f"http://{'[' + host + ']' if ':' in host else host}:{bound}/")
    server.run(sockets=[sock])  # type: ignore[attr-defined]


@contextlib.contextmanager
def running_viewer(root: Path, *, max_seconds: float = 300.0) -> Iterator[str]:
    """The viewer over ``root`` on 127.0.0.1 (a free port) in a background thread; yields its URL.
    It stops when the block ends, or by itself after ``max_seconds``."""
    server, sock = _server(root, "127.0.0.1", 0)
    try:
        with in_thread(server, max_seconds, sockets=[sock]):
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        sock.close()
