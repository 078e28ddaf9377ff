"""The batcher that gathers concurrent calls into one forward pass (the torch and hf providers): when a batch closes."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from mmbridge.batcher import MAX_WAITS, Batcher, stamp_service
from mmbridge.image import Image
from mmbridge.provider import BaseProvider
from mmbridge.types import Request, Response


def _sizes(gap_s: float, count: int, max_wait_ms: float) -> list[int]:
    sizes: list[int] = []
    batcher: Batcher[int, int] = Batcher(
        lambda items: sizes.append(len(items)) or list(items), max_batch=256, max_wait_ms=max_wait_ms
    )

    async def trickle() -> list[int]:
        calls = []
        for i in range(count):  # callers that each take a moment to build their request
            calls.append(asyncio.ensure_future(batcher.submit(i)))
            await asyncio.sleep(0)
            time.sleep(gap_s)
        return await asyncio.gather(*calls)

    assert asyncio.run(trickle()) == list(range(count))
    batcher.close()
    return sizes


def test_calls_that_keep_arriving_share_one_batch() -> None:
    # 100 calls 0.5 ms apart: a window fixed at the first arrival (10 ms) would close after about 20
    assert _sizes(gap_s=0.0005, count=100, max_wait_ms=10) == [100]


def test_a_pause_longer_than_the_wait_closes_the_batch_and_a_steady_stream_is_capped() -> None:
    sizes = _sizes(gap_s=0.008, count=6, max_wait_ms=5)
    assert len(sizes) >= 4 and sum(sizes) == 6  # 8 ms apart with a 5 ms wait: mostly one call each
    capped = _sizes(gap_s=0.001, count=120, max_wait_ms=1)  # 1 ms apart never pauses: the cap closes it
    assert sum(capped) == 120 and max(capped) <= MAX_WAITS * 1 + 5 and len(capped) >= 4


def test_each_answer_carries_its_batchs_time_and_a_queued_one_waited_for_the_batches_before_it() -> None:
    """Service time apart from queueing: 12 calls, 4 to a batch, one batch at a time. Each answer is
    stamped with its batch's own time; the third batch's callers waited through the first two."""

    def work(requests: list[Request]) -> list[Response]:
        end = time.perf_counter() + 0.02  # a batch's compute: busy, not asleep
        while time.perf_counter() < end:
            pass
        return [Response(task=r.task, text="yes", provider="p") for r in requests]

    class Batched(BaseProvider):
        def __init__(self) -> None:
            super().__init__("p")
            self.batcher = Batcher(work, max_batch=4, max_wait_ms=50, stamp=stamp_service)

        async def _generate(self, request: Request) -> Response:
            return await self.batcher.submit(request)

    provider = Batched()

    async def main() -> list[Response]:
        picture = Image(np.zeros((8, 8, 3), "uint8"))
        return await asyncio.gather(*(provider.generate(Request.verify(picture, f"s{i}")) for i in range(12)))

    answers = asyncio.run(main())
    provider.batcher.close()
    services = sorted({a.service_s for a in answers})
    assert len(services) == 3 and all(s >= 0.02 for s in services)  # three batches, each stamped once
    assert all(a.service_s <= a.latency_s for a in answers)
    waited = max(a.latency_s - a.service_s for a in answers)
    assert waited >= 2 * 0.02  # the last batch's callers queued behind two batches of 20 ms


def test_call_runs_on_the_worker_thread_between_batches_and_raises_in_the_caller() -> None:
    threads: list[str] = []
    batcher: Batcher[int, int] = Batcher(
        lambda items: threads.append(threading.current_thread().name) or list(items),
        max_batch=8,
        max_wait_ms=50,
        name="worker",
    )

    async def during_a_batch() -> tuple[list[int], str]:
        calls = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
        await asyncio.sleep(0)  # the batch is collecting when the call arrives
        ran = await asyncio.to_thread(batcher.call, lambda: threading.current_thread().name)
        return await asyncio.gather(*calls), ran

    answers, ran = asyncio.run(during_a_batch())
    assert answers == [0, 1, 2] and ran == "worker" and threads == ["worker"]  # the batch was not split
    assert batcher.call(lambda: 7) == 7
    with pytest.raises(ZeroDivisionError):
        batcher.call(lambda: 1 / 0)
    assert asyncio.run(batcher.submit(5)) == 5  # a failed call leaves the worker working
    batcher.close()


def test_calls_submitted_in_one_turn_reach_the_worker_together_and_close_answers_them() -> None:
    sizes: list[int] = []
    batcher: Batcher[int, int] = Batcher(
        lambda items: sizes.append(len(items)) or [i * 2 for i in items], max_batch=4, max_wait_ms=0
    )

    async def burst() -> list[int]:
        # ten calls in one turn of the loop, and no wait at all: batches of 4, 4, 2 from one hand-over
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)))

    assert asyncio.run(burst()) == [i * 2 for i in range(10)] and sizes == [4, 4, 2]

    batcher.close()
    closing: Batcher[int, int] = Batcher(lambda items: [i * 2 for i in items], max_batch=4, max_wait_ms=0)

    async def submitted_then_closed() -> list[int]:
        calls = [asyncio.ensure_future(closing.submit(i)) for i in range(3)]
        await asyncio.sleep(0)  # submitted; their hand-over is scheduled for the next turn
        closing.close()
        return await asyncio.wait_for(asyncio.gather(*calls), 10)  # lost calls would wait forever

    assert asyncio.run(submitted_then_closed()) == [0, 2, 4]
