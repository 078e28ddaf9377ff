"""The local model served over HTTP: answers match in-process, and concurrent HTTP clients share batches."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

from mmbridge import Client  # noqa: E402
from mmbridge.config import CacheConfig, Config  # noqa: E402
from mmbridge.serve.run import running_server  # noqa: E402


def test_served_local_model_batches_across_http_clients(tiny_run: Path, shapes_png: Path) -> None:
    client = Client(
        "torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(tiny_run / "best"), max_wait_ms=50
    )
    provider = client.provider
    while hasattr(provider, "inner"):
        provider = provider.inner
    expected = client.ask(shapes_png, "What shape is the red object?").answer
    url = "data:image/png;base64," + base64.b64encode(shapes_png.read_bytes()).decode()
    with running_server(client, "local") as base:
        sdk = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)

        def ask(i: int) -> str:
            reply = sdk.chat.completions.create(
                model="local",
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What shape is the red object?"},
                            {"type": "image_url", "image_url": {"url": url}},
                        ],
                    }
                ],
            )
            return reply.choices[0].message.content

        before = provider.batches
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, range(16)))
    assert set(answers) == {expected}
    assert provider.batches - before < 16  # concurrent HTTP requests met in shared forward passes
    client.close()
