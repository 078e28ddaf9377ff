"""The batcher that gathers concurrent calls into one forward pass (the torch and hf providers): when a batch closes."""

from __future__ import annotations

import asyncio
import time

from mmbridge.batcher import MAX_WAITS, Batcher


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
