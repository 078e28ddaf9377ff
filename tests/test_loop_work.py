"""Work that would hold the event loop runs elsewhere: cache I/O, large SDK requests, and pictures held in memory."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from mmbridge import Client, Request
from mmbridge.config import CacheConfig, Config
from mmbridge.eval.runner import _Pictures
from mmbridge.wrappers.cache import Cached


def test_the_cache_reads_and_writes_sqlite_off_the_event_loop_but_a_hit_reads_in_place(
    tmp_path: Path, shapes_png: Path
) -> None:
    client = Client("fake", config=Config(cache=CacheConfig(dir=tmp_path / "cache")))
    cached = client.provider
    assert isinstance(cached, Cached)
    calls: list[tuple[str, str]] = []
    for name in ("_get", "_set"):
        original = getattr(cached, name)

        def spy(*args: object, _original=original, _name=name) -> object:
            calls.append((_name, threading.current_thread().name))
            return _original(*args)

        setattr(cached, name, spy)

    async def twice() -> list:
        loop_thread = threading.current_thread().name
        miss = await client.aask(shapes_png, "What shape?")
        asked = len(calls)
        hit = await client.aask(shapes_png, "What shape?")
        return [loop_thread, asked, miss, hit]

    loop_thread, asked, miss, hit = asyncio.run(twice())
    assert not miss.cached and hit.cached and hit.text == miss.text
    # a miss (a file never met: its alias read, its answer read, both written) works in threads...
    assert asked == 4 and all(thread != loop_thread for _, thread in calls[:asked])
    # ...and a hit for a file this process has met is one read in place: a thread hop costs more
    assert calls[asked:] == [("_get", loop_thread)]


def test_pictures_kept_for_reuse_stay_within_a_memory_budget(tmp_path: Path) -> None:
    paths = []
    for i in range(6):
        path = tmp_path / f"p{i}.png"
        PILImage.fromarray(np.full((100, 100, 3), i, np.uint8)).save(path)
        paths.append(path)
    client = Client("fake")
    pictures = _Pictures({"f": client}, keep=100, budget=3 * 100 * 100 * 3)  # room for three decoded

    async def read_all() -> None:
        for path in paths:
            await pictures("f", path)
        again = await pictures("f", paths[-1])
        assert again is pictures.seen[("f", paths[-1])][0]

    asyncio.run(read_all())
    assert [p for (_, p) in pictures.seen] == paths[-3:] and pictures.held == 3 * 30_000
    pictures.release()
    assert not pictures.seen and pictures.held == 0


def test_a_large_request_is_sent_from_the_providers_own_loop_when_others_share_the_callers(
    openai_server, tmp_path: Path, shapes_png: Path
) -> None:
    pytest.importorskip("openai")
    noisy = tmp_path / "noisy.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(noisy)
    with Client("openai", config=Config(cache=CacheConfig(enabled=False)), base_url=openai_server.url) as client:
        sdk = client.provider.inner._sdk  # Retrying -> OpenAIProvider
        assert client.ask(shapes_png, "What shape?").answer == "red"
        assert sdk._portal is None  # a small picture: sent from the caller's loop
        assert client.ask(noisy, "What shape?").answer == "red"
        assert sdk._portal is None  # a large one, but the loop's only task: handing it over is all cost
        answers = client.batch([Request.vqa(client.image(noisy), f"What shape {i}?") for i in range(4)], concurrency=4)
        assert [a.answer for a in answers] == ["red"] * 4
        assert sdk._portal is not None and sdk._portal._thread.is_alive()  # siblings on the loop: handed over
    assert len(openai_server.requests) == 6
