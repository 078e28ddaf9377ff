"""The openai provider against a real OpenAI-compatible server on 127.0.0.1: payloads, answers, faults."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

pytest.importorskip("openai")

from mmbridge import (  # noqa: E402
    AuthenticationError,
    Client,
    ConfigError,
    Fallback,
    HTTPStatusError,
    ProviderConnectionError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitError,
)
from mmbridge.config import CacheConfig, Config, RetryConfig  # noqa: E402
from mmbridge.testing import Fault, OpenAICompatibleServer  # noqa: E402


def client_for(
    server: OpenAICompatibleServer, *, attempts: int = 3, cache: Path | None = None, **options: Any
) -> Client:
    config = Config(
        retry=RetryConfig(max_attempts=attempts, initial_wait_s=0.01, max_wait_s=1.0),
        cache=CacheConfig(enabled=cache is not None, dir=cache or Path("unused")),
    )
    return Client("openai", config=config, base_url=server.url, **options)


def _decoded(url: str) -> PILImage.Image:
    header, _, payload = url.partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64")
    return PILImage.open(io.BytesIO(base64.b64decode(payload)))


def test_the_request_carries_prompt_image_and_settings(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    with client_for(openai_server, max_image_side=64, detail="low", temperature=0.2) as client:
        response = client.ask(shapes_png, "What color is the circle?")
    assert response.answer == "red" and response.text.endswith("Answer: red") and response.provider == "openai"
    [request] = openai_server.requests
    body = request.body
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.2 and body["max_tokens"] == 300
    assert "What color is the circle?" in request.prompt
    [url] = request.image_urls
    assert _decoded(url).size == (64, 64)  # 128x128 shrunk to fit max_image_side
    assert body["messages"][0]["content"][1]["image_url"]["detail"] == "low"


def test_an_image_that_fits_is_sent_as_it_is(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    with client_for(openai_server) as client:
        client.caption(shapes_png)
    [url] = openai_server.requests[0].image_urls
    assert url == "data:image/png;base64," + base64.b64encode(shapes_png.read_bytes()).decode()


def test_choices_use_structured_output(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    with client_for(openai_server) as client:
        response = client.ask(shapes_png, "Which shape is left?", choices=["square", "circle"])
        assert response.answer == "square" and json.loads(response.text) == {"answer": "square"}
    schema = openai_server.requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answer"]["enum"] == ["square", "circle"]
    with client_for(openai_server, structured_output=False) as client:
        free = client.ask(shapes_png, "Which shape is left?", choices=["square", "circle"])
    assert "response_format" not in openai_server.requests[1].body
    assert free.answer is None  # "Answer: red" names no choice: unparseable, not guessed


def test_verify_caption_usage_and_cost(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    with client_for(openai_server) as client:
        verdict = client.verify(shapes_png, "the circle is red")
        caption = client.caption(shapes_png)
    assert verdict.label is True and caption.text.startswith("a red circle")
    usage = verdict.usage
    assert usage.input_tokens and usage.output_tokens
    assert usage.cost_usd == pytest.approx((usage.input_tokens * 0.15 + usage.output_tokens * 0.60) / 1e6)
    with client_for(openai_server, model="my-local-model") as client:
        assert client.caption(shapes_png).usage.cost_usd is None  # no price known: no made-up cost


def _attempt_times(server: OpenAICompatibleServer) -> list[float]:
    return [r.received_at for r in server.requests]


def test_429_waits_as_told_then_succeeds(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    openai_server.fail_next(Fault.rate_limit(retry_after_s=0.3), Fault.http(500), Fault.http(503))
    with client_for(openai_server, attempts=5) as client:
        assert client.ask(shapes_png, "q?").answer == "red"
    times = _attempt_times(openai_server)
    assert len(times) == 4 and times[1] - times[0] >= 0.3


@pytest.mark.parametrize(
    ("fault", "error", "attempts"),
    [
        (Fault("drop"), ProviderConnectionError, 3),
        (Fault.http(500), HTTPStatusError, 3),
        (Fault("malformed"), ProviderResponseError, 1),
        (Fault.http(401, "Incorrect API key provided: sk-abc123456789"), AuthenticationError, 1),
        (Fault.http(400, "bad image"), HTTPStatusError, 1),
        (Fault.http(404, "no such model"), HTTPStatusError, 1),
        (Fault.quota(), RateLimitError, 1),
    ],
)
def test_faults_end_in_typed_errors_after_the_right_attempts(
    openai_server: OpenAICompatibleServer, shapes_png: Path, fault: Fault, error: type, attempts: int
) -> None:
    openai_server.fail_next(*[fault] * 3)
    with client_for(openai_server, attempts=3) as client, pytest.raises(error) as info:
        client.ask(shapes_png, "q?")
    assert len(openai_server.requests) == attempts
    assert "sk-abc123456789" not in str(info.value)


def test_a_hang_past_the_timeout(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    openai_server.fail_next(Fault("hang", hang_s=3), Fault("hang", hang_s=3))
    with client_for(openai_server, attempts=2, timeout_s=0.3) as client, pytest.raises(ProviderTimeoutError):
        client.ask(shapes_png, "q?")
    assert len(openai_server.requests) == 2


def test_missing_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match=r"\$OPENAI_API_KEY is not set.*--provider fake"):
        Client("openai")
    with pytest.raises(ConfigError, match=r"\$MY_KEY is not set"):
        Client("openai", api_key_env="MY_KEY")


def test_openai_base_url_is_honoured(
    openai_server: OpenAICompatibleServer, shapes_png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    with Client("openai", config=Config(cache=CacheConfig(enabled=False))) as client:
        client.caption(shapes_png)
    assert len(openai_server.requests) == 1


def test_fallback_to_fake_when_the_server_fails(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    openai_server.fail_next(*[Fault.http(503)] * 2)
    primary = client_for(openai_server, attempts=2).provider
    with Client(Fallback([primary, Client("fake").provider])) as client:
        assert client.ask(shapes_png, "What color?").provider == "fake"


async def test_async_calls_share_one_client_per_loop(openai_server: OpenAICompatibleServer, shapes_png: Path) -> None:
    import asyncio

    client = client_for(openai_server)
    results = await asyncio.gather(*(client.aask(shapes_png, f"q{i}?") for i in range(8)))
    assert all(r.answer == "red" for r in results) and len(openai_server.requests) == 8
    await client.aclose()
