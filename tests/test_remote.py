"""Remote images: refused by default, public addresses only, and a size cap and timeout when allowed."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from mmbridge import Image, ImageError
from mmbridge.remote import fetch_image_bytes, resolve_public

from .conftest import encode, make_picture

PNG = encode(make_picture(), "PNG")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.startswith("/slow"):
            self.server.release.wait(5)  # type: ignore[attr-defined]
            return
        if self.path.startswith("/trickle"):  # a byte at a time, each well within a per-read timeout
            self.send_response(200)
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            for byte in PNG[:50]:
                if self.server.release.wait(0.1):  # type: ignore[attr-defined]
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/")
            self.end_headers()
            return
        body = PNG * 20 if self.path.startswith("/big") else PNG
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.release = threading.Event()  # type: ignore[attr-defined]
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.release.set()  # type: ignore[attr-defined]
    srv.shutdown()
    srv.server_close()


def _loopback_ok(host: str, port: int) -> str:
    return "127.0.0.1"


def test_private_and_loopback_addresses_are_refused_even_when_allowed(server: str) -> None:
    with pytest.raises(ImageError, match="not a public address"):
        Image(server + "/a.png", allow_remote=True)
    for host in ("localhost", "10.0.0.1", "169.254.169.254", "192.168.1.1"):
        with pytest.raises(ImageError, match="not a public address"):
            resolve_public(host, 80)


def test_fetch_reads_the_image_through_the_vetted_address(server: str) -> None:
    data = fetch_image_bytes(server + "/a.png?sig=secret", max_bytes=10**6, timeout_s=5, resolve=_loopback_ok)
    assert Image(data).content_hash == Image(PNG).content_hash


def test_size_cap_timeout_and_redirects(server: str) -> None:
    with pytest.raises(ImageError, match="limit"):
        fetch_image_bytes(server + "/big.png", max_bytes=len(PNG) * 2, timeout_s=5, resolve=_loopback_ok)
    with pytest.raises(ImageError, match="not downloaded within 0.3 s"):
        fetch_image_bytes(server + "/slow.png?sig=secret", max_bytes=10**6, timeout_s=0.3, resolve=_loopback_ok)
    with pytest.raises(ImageError, match="redirects are not followed") as info:
        fetch_image_bytes(server + "/moved", max_bytes=10**6, timeout_s=5, resolve=_loopback_ok)
    assert "secret" not in str(info.value)


def test_the_timeout_bounds_the_whole_download_not_each_read(server: str) -> None:
    start = time.monotonic()
    with pytest.raises(ImageError, match="not downloaded within 0.5 s"):
        fetch_image_bytes(server + "/trickle.png", max_bytes=10**6, timeout_s=0.5, resolve=_loopback_ok)
    assert time.monotonic() - start < 2.5  # the trickle lasts 5 s; each byte alone is well inside 0.5 s
