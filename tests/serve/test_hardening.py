"""mmbridge serve under attack and overload: no file reads, no 500s, bounded queues and time."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

pytest.importorskip("fastapi")

from mmbridge import Client  # noqa: E402
from mmbridge.config import CacheConfig, Config  # noqa: E402
from mmbridge.serve.app import ServeLimits  # noqa: E402
from mmbridge.serve.run import running_server  # noqa: E402

NO_CACHE = Config(cache=CacheConfig(enabled=False))


def _body(url: str, text: str = "What color is the circle?", model: str = "fake") -> dict:
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def _data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def served() -> Iterator[str]:
    client = Client("fake", config=NO_CACHE)
    with running_server(client, "fake") as url:
        yield url
    client.close()


def test_the_server_never_opens_its_own_files(served: str, shapes_png: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it would block the server forever
    urls = [str(shapes_png), str(tmp_path / "missing.png"), str(tmp_path), str(fifo), f"file://{shapes_png}"]
    urls += [
        "examples/shapes.png",
        "DATA:image/png;base64,AAAA",
        "ftp://example.com/a.png",
        "https://example.com/a.png",
    ]
    messages = set()
    for url in urls:
        response = httpx2.post(f"{served}/chat/completions", json=_body(url), timeout=5)
        assert response.status_code == 400, url
        error = response.json()["error"]
        assert error["code"] == "invalid_image"
        messages.add(error["message"])
    assert len(messages) == 1  # the same words whether the path exists or not: nothing to probe
    assert "data:" in messages.pop()
    ok = httpx2.post(f"{served}/chat/completions", json=_body(_data_url(shapes_png)), timeout=5)
    assert ok.status_code == 200


def test_what_a_client_sends_is_a_4xx_in_the_wire_format_and_logged(
    served: str, shapes_png: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nested = b"[" * 5000 + b"]" * 5000
    surrogate = json.dumps(_body(_data_url(shapes_png), text="what \ud800 is this?")).encode()
    assert b"\\ud800" in surrogate  # a lone surrogate, as JSON allows it to be written
    bad_model = json.dumps(_body(_data_url(shapes_png), model="\ud800")).encode()
    with caplog.at_level(logging.INFO, logger="mmbridge.serve"):
        for raw in (nested, surrogate, bad_model):
            response = httpx2.post(f"{served}/chat/completions", content=raw, timeout=5)
            assert 400 <= response.status_code < 500, response.text
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("POST /v1/chat/completions")]
    assert [line.split()[3] for line in lines] == ["400", "400", "404"]
    assert not any(r.exc_info for r in caplog.records)


def test_past_the_waiting_bound_the_answer_is_429_with_retry_after(shapes_png: Path) -> None:
    client = Client("fake", config=NO_CACHE, delay_s=1.0, max_concurrency=2)
    body = _body(_data_url(shapes_png))
    with running_server(client, "fake", limits=ServeLimits(max_waiting=3)) as url, ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: httpx2.post(f"{url}/chat/completions", json=body, timeout=30), range(10)))
    client.close()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 5  # 2 answered at once, 3 waiting, the rest refused
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["type"] == "rate_limit_error"


def test_a_request_that_takes_too_long_is_a_504(shapes_png: Path) -> None:
    client = Client("fake", config=NO_CACHE, delay_s=5.0)
    with running_server(client, "fake", limits=ServeLimits(request_timeout_s=0.3)) as url:
        start = time.monotonic()
        response = httpx2.post(f"{url}/chat/completions", json=_body(_data_url(shapes_png)), timeout=10)
        assert response.status_code == 504 and time.monotonic() - start < 3
        assert response.json()["error"]["type"] == "timeout"
    client.close()


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_clients_are_cut_off_and_health_still_answers(shapes_png: Path) -> None:
    client = Client("fake", config=NO_CACHE)
    with running_server(client, "fake", limits=ServeLimits(read_timeout_s=0.5)) as url:
        drips = [_connect(url) for _ in range(40)]
        for sock in drips:  # headers that never finish
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        body_drip = _connect(url)  # headers complete, the body never does
        body_drip.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        assert httpx2.get(url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
        start = time.monotonic()
        replies = [_read_all(sock) for sock in drips]  # each ends when the server closes it
        assert time.monotonic() - start < 4
        assert all(r.startswith(b"HTTP/1.1 408") and b'"code": "timeout"' in r for r in replies)
        late = _read_all(body_drip)
        assert b" 408 " in late.split(b"\r\n", 1)[0] and b"did not arrive" in late
        for sock in [*drips, body_drip]:
            sock.close()
        assert httpx2.get(url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
    client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_then_exits_in_bounded_time(shapes_png: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import threading

    config = tmp_path / "mmbridge.toml"
    config.write_text('[cache]\nenabled = false\n[providers.slow]\ntype = "fake"\ndelay_s = 1.5\n')
    port = _free_port()
    command = [sys.executable, "-m", "mmbridge.cli.main", "serve", "-p", "slow", "-c", str(config)]
    command += ["--port", str(port), "--read-timeout", "30", "--shutdown-timeout", "3"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # bounded: wait for the server to come up
            try:
                if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        slow = _connect(base + "/v1")  # a client whose body never arrives: shutdown must not wait for it
        slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        result: dict[str, httpx2.Response] = {}
        asking = threading.Thread(
            target=lambda: result.setdefault(
                "r", httpx2.post(f"{base}/v1/chat/completions", json=_body(_data_url(shapes_png), model="slow"))
            )
        )
        asking.start()
        time.sleep(0.5)  # ordering, not timing: let the request reach the provider's 1.5 s answer first
        server.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = server.wait(timeout=20)
        took = time.monotonic() - start
        asking.join(timeout=10)
        slow.close()
    finally:
        server.kill()
        stderr = server.stderr.read().decode() if server.stderr else ""
    assert code in (0, -signal.SIGTERM), stderr  # uvicorn re-raises the signal once it has shut down
    assert took < 3 + 2  # the shutdown limit, plus start-up slack
    assert result["r"].status_code == 200  # the request in flight was answered
    assert "Traceback" not in stderr


def test_a_trickling_remote_image_neither_blocks_the_server_nor_outlasts_its_timeout(
    shapes_png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import http.server
    import threading

    from mmbridge import remote
    from mmbridge.config import ImagesConfig

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(40):  # a byte every 0.1 s: each read is quick, the whole is not
                if stop.wait(0.1):
                    return
                self.wfile.write(b"\x89")
                self.wfile.flush()

        def log_message(self, *args: object) -> None:
            pass

    stop = threading.Event()
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    origin.daemon_threads = True
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    monkeypatch.setattr(remote, "resolve_public", lambda host, port: "127.0.0.1")  # the test's origin is local
    config = Config(cache=CacheConfig(enabled=False), allow_remote_images=True, images=ImagesConfig(remote_timeout_s=1))
    client = Client("fake", config=config)
    image_url = f"http://127.0.0.1:{origin.server_address[1]}/a.png"
    with running_server(client, "fake") as url, ThreadPoolExecutor(1) as pool:
        start = time.monotonic()
        pending = pool.submit(httpx2.post, f"{url}/chat/completions", json=_body(image_url), timeout=10)
        while not pending.done() and time.monotonic() - start < 0.5:  # while the download trickles...
            health = time.monotonic()
            assert httpx2.get(url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
            assert time.monotonic() - health < 0.5  # ...the loop answers (blocked, it would take the whole 1 s)
        response = pending.result()
        assert response.status_code == 400 and "not downloaded within 1 s" in response.json()["error"]["message"]
        assert time.monotonic() - start < 3
    stop.set()
    origin.shutdown()
    origin.server_close()
    client.close()
