"""The cluster-wide limiter sits inside a provider's retries: every attempt takes its turn."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mmbridge import Client, Request, Response
from mmbridge.config import CacheConfig, Config
from mmbridge.distributed.worker import _limit
from mmbridge.errors import ProviderConnectionError
from mmbridge.types import Task


class _Counting:
    """Stands in for the limiter actor's handle: ``acquire.remote`` and ``release.remote``."""

    def __init__(self) -> None:
        self.starts = 0
        limiter = self

        class Acquire:
            @staticmethod
            async def remote(name: str) -> float:
                limiter.starts += 1
                return 0.0

        class Release:
            @staticmethod
            def remote(name: str) -> None:
                return None

        self.acquire, self.release = Acquire, Release


def test_each_attempt_of_a_retried_call_waits_for_the_limiter(shapes_png: Path) -> None:
    attempts = []

    def flaky(request: Request) -> Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise ProviderConnectionError("connection reset", provider="flaky")
        return Response(task=Task.VQA, text="red", answer="red", provider="flaky")

    config = Config(cache=CacheConfig(enabled=False), retry={"initial_wait_s": 0.001, "max_wait_s": 0.01})
    client = Client("function", fn=flaky, config=config)
    limiter = _Counting()
    client.provider = _limit(client.provider, limiter, "flaky")
    assert asyncio.run(client.agenerate(Request.vqa(client.image(shapes_png), "What colour?"))).answer == "red"
    assert len(attempts) == 3 and limiter.starts == 3  # two retries, each through the limiter
