"""A small fault soak: random 429s (with Retry-After), 500s, drops and hangs; all succeed within max_attempts."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openai")

from mmbridge import Client, Request  # noqa: E402
from mmbridge.config import CacheConfig, Config, RetryConfig  # noqa: E402
from mmbridge.testing import FaultMix, OpenAICompatibleServer  # noqa: E402


@pytest.mark.slow
def test_every_request_succeeds_and_none_exceeds_max_attempts(shapes_png: Path) -> None:
    mix = FaultMix(rate_limit=0.3, server_error=0.1, drop=0.05, hang=0.05, hang_s=1.0, clean_after=4, seed=3)
    config = Config(cache=CacheConfig(enabled=False), retry=RetryConfig(max_attempts=4, initial_wait_s=0.02))
    with OpenAICompatibleServer(mix=mix, max_seconds=120) as server:
        with Client("openai", config=config, base_url=server.url, timeout_s=0.4) as client:
            results = client.batch(
                [Request.vqa(shapes_png, f"q{i}?") for i in range(120)], concurrency=20, progress=False
            )
        assert not [r for r in results if isinstance(r, Exception)]
        assert max(server.attempts.values()) <= 4
        assert len(server.requests) > 150  # faults really happened and were retried
