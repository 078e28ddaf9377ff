"""The API key never appears in cache files, logs (even at DEBUG), reprs or exception texts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest.importorskip("openai")

from mmbridge import AuthenticationError, Client, HTTPStatusError  # noqa: E402
from mmbridge.config import CacheConfig, Config, RetryConfig  # noqa: E402
from mmbridge.testing import Fault, OpenAICompatibleServer  # noqa: E402

SECRET = "sk-test-7Hq2Zr9XyLm4Pw8Kd3Vn6Bs1"


def _files_text(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_the_key_never_leaks(
    tmp_path: Path, shapes_png: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TEST_KEY", SECRET)
    config = Config(cache=CacheConfig(dir=tmp_path / "cache"), retry=RetryConfig(max_attempts=2, initial_wait_s=0.01))
    caplog.set_level(logging.DEBUG)  # everything: ours, the SDK's, the HTTP client's
    with OpenAICompatibleServer(api_key=SECRET, max_seconds=60) as server:
        client = Client("openai", config=config, base_url=server.url, api_key_env="TEST_KEY")
        assert client.ask(shapes_png, "q?").answer == "red"
        assert client.ask(shapes_png, "q?").cached
        server.fail_next(Fault.http(500, f"upstream said {SECRET}"), Fault.http(500, f"key {SECRET}"))
        with pytest.raises(HTTPStatusError) as failure:
            client.ask(shapes_png, "other?")
        texts = [str(failure.value), repr(failure.value), repr(client), repr(client.provider)]
        client.close()
        monkeypatch.setenv("TEST_KEY", SECRET[:-4] + "0000")  # a wrong key: the server's 401 quotes part of it
        wrong = Client("openai", config=config, base_url=server.url, api_key_env="TEST_KEY")
        with pytest.raises(AuthenticationError) as denied:
            wrong.ask(shapes_png, "third?")
        wrong.close()
        assert server.requests[0].authorized
    texts += [str(denied.value), repr(denied.value), caplog.text]
    assert caplog.records, "DEBUG logging was captured"
    for text in texts:
        assert SECRET not in text and SECRET[:-4] not in text
    assert SECRET.encode() not in _files_text(tmp_path / "cache")
    assert b"sk-test" not in _files_text(tmp_path / "cache")
