"""mmbridge serve: the official SDK and mmbridge's own openai provider against a real local server."""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from mmbridge_openai.prompts import render  # noqa: E402

from mmbridge import Client, Image, Request  # noqa: E402
from mmbridge.config import CacheConfig, Config  # noqa: E402
from mmbridge.serve.app import ServeLimits  # noqa: E402
from mmbridge.serve.run import running_server  # noqa: E402

KEY = "serve-test-key-123"


@pytest.fixture
def served() -> Iterator[str]:
    client = Client("fake", config=Config(cache=CacheConfig(enabled=False)))
    with running_server(client, "fake", api_key=KEY, limits=ServeLimits(max_body_bytes=200_000)) as url:
        yield url
    client.close()


def _data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _content(text: str, *urls: str) -> list[dict]:
    return [{"type": "text", "text": text}] + [{"type": "image_url", "image_url": {"url": u}} for u in urls]


def test_official_sdk_gets_the_in_process_answer(served: str, shapes_png: Path) -> None:
    sdk = openai.OpenAI(base_url=served, api_key=KEY, max_retries=0)
    completion = sdk.chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": _content("What color is the circle?", _data_url(shapes_png))}],
    )
    with Client("fake", config=Config(cache=CacheConfig(enabled=False))) as local:
        expected = local.ask(shapes_png, "What color is the circle?")
    assert completion.choices[0].message.content == expected.answer == "red"
    assert completion.usage.prompt_tokens > 0 and completion.model == "fake"
    verdict = sdk.chat.completions.create(
        model="fake:verify",
        messages=[{"role": "user", "content": _content("the circle is red", _data_url(shapes_png))}],
    )
    assert verdict.choices[0].message.content in ("yes", "no")
    caption = sdk.chat.completions.create(
        model="fake:caption", messages=[{"role": "user", "content": _content("", _data_url(shapes_png))}]
    )
    assert caption.choices[0].message.content == "a picture with something red in it"
    ids = [m.id for m in sdk.models.list().data]
    assert ids == ["fake", "fake:vqa", "fake:verify", "fake:caption"]


def test_mmbridge_openai_provider_through_cache_and_retry(
    served: str, shapes_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVE_KEY", KEY)
    config = Config(cache=CacheConfig(dir=tmp_path / "cache"))
    with Client("openai", config=config, base_url=served, model="fake", api_key_env="SERVE_KEY") as remote:
        first = remote.ask(shapes_png, "What color is the circle?")
        again = remote.ask(shapes_png, "What color is the circle?")
        closed = remote.ask(shapes_png, "Which shape?", choices=["square", "circle"])
    # the server's fake saw the openai provider's rendered prompt, not the bare question: ask it that
    sent = render(Request.vqa(Image(shapes_png), "Which shape?", ["square", "circle"]), {})
    with Client("fake", config=Config(cache=CacheConfig(enabled=False))) as local:
        assert closed.answer == local.ask(shapes_png, sent, choices=["square", "circle"]).answer
    assert first.answer == "red" and again.cached and not first.cached


def _post(url: str, body: object, key: str | None = KEY, raw: bytes | None = None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx2.post(
        f"{url}/chat/completions", content=content, headers={**headers, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no key", 401, "invalid_api_key"),
        ("wrong key", 401, "invalid_api_key"),
        ("not json", 400, None),
        ("unknown model", 404, "model_not_found"),
        ("no image", 400, "image_count"),
        ("two images", 400, "image_count"),
        ("audio part", 400, "unsupported_content"),
        ("remote image", 400, "invalid_image"),
        ("broken image", 400, "invalid_image"),
        ("too large", 413, "body_too_large"),
        ("too large, chunked", 413, "body_too_large"),
        ("wrong method", 405, None),
    ],
)
def test_errors_follow_the_openai_format(
    served: str, shapes_png: Path, case: str, status: int, code: str | None
) -> None:
    image = _data_url(shapes_png)
    good = {"model": "fake", "messages": [{"role": "user", "content": _content("q?", image)}]}
    bodies = {
        "no key": (good, None),
        "wrong key": (good, "nope"),
        "unknown model": ({**good, "model": "gpt-9"}, KEY),
        "no image": ({**good, "messages": [{"role": "user", "content": "q?"}]}, KEY),
        "two images": ({**good, "messages": [{"role": "user", "content": _content("q?", image, image)}]}, KEY),
        "audio part": (
            {**good, "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            KEY,
        ),
        "remote image": (
            {**good, "messages": [{"role": "user", "content": _content("q?", "https://example.com/a.png")}]},
            KEY,
        ),
        "broken image": (
            {**good, "messages": [{"role": "user", "content": _content("q?", "data:image/png;base64,AAAA")}]},
            KEY,
        ),
        "too large": ({**good, "padding": "x" * 300_000}, KEY),
    }
    if case == "not json":
        response = _post(served, None, raw=b"{not json")
    elif case == "too large, chunked":  # no Content-Length: the cap is enforced while reading
        pieces = iter([b'{"model": "fake", "padding": "' + b"x" * 100_000] * 3 + [b'"}'])
        response = httpx2.post(f"{served}/chat/completions", content=pieces, headers={"Authorization": f"Bearer {KEY}"})
    elif case == "wrong method":
        response = httpx2.get(f"{served}/chat/completions", headers={"Authorization": f"Bearer {KEY}"})
    else:
        body, key = bodies[case]
        response = _post(served, body, key=key)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code and error["message"]


def test_health_and_log_lines(served: str, shapes_png: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mmbridge.serve"):
        assert httpx2.get(served.removesuffix("/v1") + "/health").json() == {"status": "ok", "provider": "fake"}
        body = {"model": "fake", "messages": [{"role": "user", "content": _content("q?", _data_url(shapes_png))}]}
        assert _post(served, body).status_code == 200
    line = next(r.getMessage() for r in caplog.records if "/v1/chat/completions" in r.getMessage())
    assert line.startswith("POST /v1/chat/completions model=fake 200") and " ms" in line
    assert "base64" not in caplog.text and KEY not in caplog.text


def test_serve_lengthens_the_gil_switch_interval_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from mmbridge.serve import run

    seen: dict[str, object] = {}

    def fake_run(server: uvicorn.Server) -> None:
        seen["interval"], seen["host"] = sys.getswitchinterval(), server.config.host

    before = sys.getswitchinterval()
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    client = Client("fake", config=Config(cache=CacheConfig(enabled=False)))
    run.serve(client, "fake")
    client.close()
    assert seen == {"interval": pytest.approx(run.SWITCH_INTERVAL_S), "host": "127.0.0.1"}
    assert sys.getswitchinterval() == pytest.approx(before)
