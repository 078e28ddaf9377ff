"""Client: the sync and async facade, batches, the function and fake providers, Limited and Fallback."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from mmbridge import (
    AuthenticationError,
    Cached,
    Client,
    Fallback,
    ImageError,
    Limited,
    ProviderError,
    Request,
    Response,
    Retrying,
    Task,
    UnsupportedTaskError,
)


def test_fake_answers_are_deterministic_and_derived_from_the_request(shapes_png: Path) -> None:
    with Client("fake") as client:
        first = client.ask(shapes_png, "What color is the circle?")
        again = client.ask(shapes_png.read_bytes(), "What color is the circle?", cache=False)
        assert first == again.model_copy(update={"latency_s": first.latency_s, "service_s": first.service_s})
        assert first.answer == "red" and first.provider == "fake" and first.model == "fake-1"
        assert first.latency_s is not None and first.usage.cost_usd == 0.0
        assert client.caption(shapes_png).text == "a picture with something red in it"
        verdict = client.verify(shapes_png, "there is a circle")
        assert (
            verdict.label is not None
            and client.verify(shapes_png, "there is a circle", cache=False).label == verdict.label
        )
        closed = client.ask(shapes_png, "Which shape?", choices=["circle", "square"])
        assert closed.answer in ("circle", "square")
    with Client("fake", seed=1) as other:
        answers = {other.ask(shapes_png, f"question {i}?").answer for i in range(20)}
    assert len(answers) > 1  # hash-derived answers vary with the question


async def test_async_twins(shapes_png: Path) -> None:
    client = Client("fake")
    results = await asyncio.gather(
        client.aask(shapes_png, "What colour?"), client.acaption(shapes_png), client.averify(shapes_png, "red")
    )
    assert [r.task for r in results] == [Task.VQA, Task.CAPTION, Task.VERIFY]
    assert results[0].answer == "red"
    await client.aclose()


def test_function_provider_sync_and_async(shapes_png: Path) -> None:
    seen: list[Request] = []

    def answer(request: Request) -> str:
        seen.append(request)
        return "Thinking...\nAnswer: Two" if request.task is Task.VQA else "yes"

    async def caption(request: Request) -> Response:
        return Response(task=request.task, text="custom", provider="mine")

    with Client("function", fn=answer, tasks=["vqa", "verify"]) as client:
        vqa = client.ask(shapes_png, "How many?")
        assert vqa.answer == "2" and vqa.text.startswith("Thinking") and vqa.model == "answer"
        assert client.verify(shapes_png, "s").label is True
        with pytest.raises(UnsupportedTaskError):
            client.caption(shapes_png)
    assert seen[0].image.size == (128, 128)
    with Client("function", fn=caption) as client:
        assert client.caption(shapes_png).text == "custom"
    with Client("function", fn=lambda r: 42) as client, pytest.raises(ProviderError, match="returned int"):
        client.caption(shapes_png)


def test_batch_keeps_order_and_returns_errors_in_place(shapes_png: Path, tmp_path: Path) -> None:
    def answer(request: Request) -> str:
        if request.question == "fail?":
            raise AuthenticationError("bad key", status_code=401)
        return request.question or ""

    requests = [Request.vqa(shapes_png, f"q{i}?") for i in range(30)]
    requests[7] = Request.vqa(shapes_png, "fail?")
    mixed = [*requests, {"task": "vqa", "image": tmp_path / "missing.png", "question": "x?"}, {"task": "vqa"}]
    with Client("function", fn=answer) as client:
        results = client.batch(mixed, concurrency=4, progress=False)
    assert len(results) == 32
    assert [r.text for r in results[:7] if isinstance(r, Response)] == [f"q{i}?" for i in range(7)]
    assert isinstance(results[7], AuthenticationError)
    assert isinstance(results[30], ImageError) and "missing.png" in str(results[30])
    assert isinstance(results[31], Exception)
    assert all(isinstance(r, Response) for i, r in enumerate(results[:30]) if i != 7)


def test_batch_concurrency_bound_and_progress_bar(shapes_png: Path, capsys: pytest.CaptureFixture[str]) -> None:
    in_flight, peak = 0, 0

    async def slow(request: Request) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return "ok"

    with Client("function", fn=slow) as client:
        results = client.batch([Request.caption(shapes_png)] * 12, concurrency=3, progress=True)
    assert all(isinstance(r, Response) for r in results) and peak == 3
    assert "answering" in capsys.readouterr().err


class _InFlight:
    """A function provider's body that takes 50 ms and records its starts and its peak concurrency."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.now = self.peak = 0
        self.lock = threading.Lock()

    async def call(self, request: Request) -> str:
        with self.lock:
            self.starts.append(time.monotonic())
            self.now += 1
            self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.05)
        with self.lock:
            self.now -= 1
        return "ok"


def test_limited_caps_concurrency_and_spaces_starts(shapes_png: Path) -> None:
    record = _InFlight()
    starts = record.starts
    inner = Client("function", fn=record.call).provider
    with Client(Limited(inner, max_concurrency=2)) as client:
        client.batch([Request.caption(shapes_png)] * 8, concurrency=8, progress=False)
    assert record.peak == 2
    starts.clear()
    with Client(Limited(inner, requests_per_minute=600)) as client:  # one start per 0.1 s
        client.batch([Request.caption(shapes_png)] * 4, concurrency=4, progress=False)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(gaps) == 3 and min(gaps) >= 0.09


def test_fallback_moves_on_after_provider_errors_only(shapes_png: Path) -> None:
    def down(request: Request) -> str:
        raise ProviderError("server down")

    broken = Client("function", fn=down).provider
    caption_only = Client("fake", tasks=["caption"]).provider
    backup = Client("fake").provider
    with Client(Fallback([broken, caption_only, backup])) as client:
        assert client.ask(shapes_png, "What color?").provider == "fake"
        with pytest.raises(ImageError):
            client.ask(b"not an image", "What color?")
    with Client(Fallback([broken])) as client, pytest.raises(ProviderError, match="server down"):
        client.ask(shapes_png, "q?")
    with Client(Fallback([caption_only])) as client, pytest.raises(UnsupportedTaskError):
        client.ask(shapes_png, "q?")


def test_from_config_builds_the_wrapped_stack(tmp_path: Path, shapes_png: Path) -> None:
    config = tmp_path / "mmbridge.toml"
    config.write_text(
        'default = "safe"\n'
        '[providers.quick]\ntype = "fake"\nseed = 3\nrequests_per_minute = 6000\n'
        '[providers.safe]\ntype = "fallback"\nproviders = ["quick", "fake"]\n'
    )
    with Client.from_config(config) as client:
        cached = client.provider
        assert isinstance(cached, Cached) and cached.directory == tmp_path / ".mmbridge" / "cache"
        fallback = cached.inner
        assert isinstance(fallback, Fallback)
        retried = fallback.providers[0]
        assert isinstance(retried, Retrying) and retried.max_attempts == 5
        assert isinstance(retried.inner, Limited) and retried.inner.requests_per_minute == 6000
        assert client.ask(shapes_png, "What color?").provider == "quick"
        assert "Fallback" in repr(client)


def test_client_rejects_options_with_a_provider_instance() -> None:
    with pytest.raises(TypeError):
        Client(Client("fake").provider, seed=3)


def test_limited_holds_across_event_loops_and_cancellation(shapes_png: Path) -> None:
    record = _InFlight()
    limited = Limited(Client("function", fn=record.call).provider, max_concurrency=2)
    image = Request.caption(shapes_png)

    async def many() -> None:
        tasks = [asyncio.ensure_future(limited.generate(image)) for _ in range(8)]
        tasks[-1].cancel()  # a waiter that leaves must not take a slot with it
        await asyncio.gather(*tasks, return_exceptions=True)

    loops = [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(2)]  # two loops, one limit
    for thread in loops:
        thread.start()
    for thread in loops:
        thread.join(timeout=30)
    assert record.peak == 2
    asyncio.run(many())  # every slot came back: a third round is not stuck
    assert record.peak == 2
