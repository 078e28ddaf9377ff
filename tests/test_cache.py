"""Cached: hits, keys, no cached errors, single flight, per-call modes, TTL, and several processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage

from mmbridge import BaseProvider, Cached, Client, Image, ProviderError, Request, Response, Retrying
from mmbridge.providers.fake import FakeOptions, FakeProvider


class Counting(BaseProvider):
    def __init__(self, delay: float = 0.0, fail: bool = False, model: str = "m1") -> None:
        super().__init__("counting")
        self.calls, self.delay, self.fail, self.model = 0, delay, fail, model

    async def _generate(self, request: Request) -> Response:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ProviderError("boom")
        return Response(task=request.task, text=f"answer {self.calls}", provider=self.name, model=self.model)


async def test_a_hit_returns_the_stored_answer(tmp_path: Path, shapes_png: Path) -> None:
    inner = Counting()
    cached = Cached(inner, tmp_path / "c")
    first = await cached.generate(Request.vqa(shapes_png, "q?"))
    second = await cached.generate(Request.vqa(shapes_png, "q?"))
    assert inner.calls == 1 and not first.cached and second.cached and second.text == first.text
    assert (cached.hits, cached.misses) == (1, 1)
    await cached.generate(Request.vqa(shapes_png, "other?"))
    assert inner.calls == 2


async def test_errors_are_never_cached(tmp_path: Path, shapes_png: Path) -> None:
    inner = Counting(fail=True)
    cached = Cached(inner, tmp_path / "c")
    for _ in range(2):
        with pytest.raises(ProviderError):
            await cached.generate(Request.caption(shapes_png))
    assert inner.calls == 2


async def test_key_follows_pixels_and_identity_not_transport_settings(tmp_path: Path, shapes_png: Path) -> None:
    request = Request.vqa(shapes_png, "q?")
    as_bmp = tmp_path / "same.bmp"
    PILImage.open(shapes_png).save(as_bmp)
    base = Cached(Counting(), tmp_path / "a")
    assert base.key(request) == base.key(Request.vqa(as_bmp, "q?"))  # same pixels, other file format
    assert base.key(request) != base.key(Request.vqa(shapes_png, "q? "))
    retried = Cached(Retrying(Counting(), max_attempts=9, max_wait_s=1), tmp_path / "b")
    assert retried.key(request) == base.key(request)  # retries, waits and limits do not change answers
    assert Cached(Counting(model="m2"), tmp_path / "c").key(request) != base.key(request)
    seeded = [Cached(FakeProvider("fake", FakeOptions(seed=s)), tmp_path / f"s{s}").key(request) for s in (1, 2)]
    assert seeded[0] != seeded[1]


async def test_a_hit_from_a_file_path_needs_no_decode(tmp_path: Path, shapes_png: Path) -> None:
    inner = Counting()
    cached = Cached(inner, tmp_path / "c")
    await cached.generate(Request.vqa(Image(shapes_png, lazy=True), "q?"))
    again = Image(shapes_png, lazy=True)
    hit = await cached.generate(Request.vqa(again, "q?"))
    assert hit.cached and not again.is_decoded and inner.calls == 1


async def test_identical_requests_in_flight_are_sent_once(tmp_path: Path, shapes_png: Path) -> None:
    inner = Counting(delay=0.05)
    cached = Cached(inner, tmp_path / "c")
    results = await asyncio.gather(*(cached.generate(Request.vqa(shapes_png, "q?")) for _ in range(10)))
    assert inner.calls == 1 and len({r.text for r in results}) == 1
    assert sum(r.cached for r in results) == 9


async def test_followers_share_the_leaders_error(tmp_path: Path, shapes_png: Path) -> None:
    inner = Counting(delay=0.05, fail=True)
    cached = Cached(inner, tmp_path / "c")
    results = await asyncio.gather(
        *(cached.generate(Request.vqa(shapes_png, "q?")) for _ in range(4)), return_exceptions=True
    )
    assert inner.calls == 1 and all(isinstance(r, ProviderError) for r in results)


def test_per_call_cache_off_and_refresh(shapes_png: Path) -> None:
    with Client("fake") as client:
        first = client.ask(shapes_png, "q?")
        assert client.ask(shapes_png, "q?").cached
        assert not client.ask(shapes_png, "q?", cache=False).cached
        assert not client.ask(shapes_png, "q?", refresh=True).cached
        assert client.ask(shapes_png, "q?").cached and first.answer == client.ask(shapes_png, "q?").answer
        results = client.batch([Request.vqa(shapes_png, "q?")] * 3, cache=False, progress=False)
        assert not any(r.cached for r in results)


async def test_ttl_sets_an_expiry(tmp_path: Path, shapes_png: Path) -> None:
    cached = Cached(Counting(), tmp_path / "c", ttl_s=120)
    request = Request.caption(shapes_png)
    await cached.generate(request)
    _, expires = cached.store.get(cached.key(request), expire_time=True)
    assert expires == pytest.approx(time.time() + 120, abs=5)


def _worker(directory: str, png: str, worker: int) -> int:
    async def run() -> int:
        inner = Counting()
        cached = Cached(inner, directory)
        for i in range(40):
            await cached.generate(Request.vqa(png, f"q{i % 20}?"))
        return inner.calls

    return asyncio.run(run())


def test_several_processes_share_one_directory(tmp_path: Path, shapes_png: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        calls = pool.starmap(_worker, [(str(tmp_path / "shared"), str(shapes_png), w) for w in range(2)])
    # a process never asks twice what is stored; between them each question is asked at least once
    assert all(c <= 20 for c in calls) and 20 <= sum(calls) <= 40
    cached = Cached(Counting(), tmp_path / "shared")
    assert sum(1 for k in cached.store.iterkeys() if not str(k).startswith("source:")) == 20
