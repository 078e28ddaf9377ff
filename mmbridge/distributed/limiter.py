"""Limits that hold across the cluster: one limiter actor that every worker asks before each call.

A provider's ``requests_per_minute`` and ``max_concurrency`` are global, however many actors run:
the limiter counts calls in flight and hands out start times for the whole pool, ``LEAD`` seconds
ahead, and each worker waits for its time by its own clock: how long the grant took to reach it
does not matter (clocks of different nodes must agree to a few milliseconds, as NTP keeps them).
Starts are spaced 60 / rpm seconds plus ``MARGIN`` (a quarter): what a call does between its start
and its arrival at the server (a first call opens its connection: tens of milliseconds; a busy
worker wakes late) varies. Exact spacing, and then a 10% margin, let 11 calls of a 600-a-minute
limit reach a server (in a process of its own) within one second on this 2-core machine; the
price is a rate a fifth below the one configured.
Asking costs a round trip to the limiter actor (about a millisecond on one machine) per call.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..provider import Provider, WrapperProvider
from ..types import Request, Response

__all__ = ["GlobalLimited", "LimiterActor", "limits_of"]

#: starts are spaced this much wider than the rate asks, and granted this many seconds ahead
MARGIN = 0.25
LEAD = 0.05


def limits_of(config: Any) -> dict[str, tuple[int | None, float | None]]:
    """(max_concurrency, requests_per_minute) of every provider entry that sets one."""
    out = {}
    for name, entry in config.all_providers().items():
        if entry.max_concurrency is not None or entry.requests_per_minute is not None:
            out[name] = (entry.max_concurrency, entry.requests_per_minute)
    return out


class LimiterActor:
    """Made a Ray actor by the executor (``ray.remote(LimiterActor)``); its methods run on one event loop."""

    def __init__(self, limits: dict[str, tuple[int | None, float | None]]) -> None:
        self.limits = limits
        self.next_start: dict[str, float] = {}
        self.slots: dict[str, asyncio.Semaphore] = {}

    async def acquire(self, name: str) -> float:
        """A slot, and the time (``time.time()``) the call may start."""
        concurrency, rpm = self.limits.get(name, (None, None))
        if concurrency is not None:
            slots = self.slots.setdefault(name, asyncio.Semaphore(concurrency))
            await slots.acquire()
        if rpm is None:
            return 0.0
        start = max(time.time() + LEAD, self.next_start.get(name, 0.0))
        self.next_start[name] = start + (1 + MARGIN) * 60.0 / rpm
        return start

    async def release(self, name: str) -> None:
        if name in self.slots:
            self.slots[name].release()


class GlobalLimited(WrapperProvider):
    """Each call waits for the cluster-wide limiter (a call, not each retry of it, takes one start)."""

    def __init__(self, inner: Provider, limiter: Any, name: str) -> None:
        super().__init__(inner)
        self.limiter, self.key = limiter, name

    async def generate(self, request: Request) -> Response:
        start = await self.limiter.acquire.remote(self.key)
        try:
            if start > time.time():
                await asyncio.sleep(start - time.time())
            return await self.inner.generate(request)
        finally:
            self.limiter.release.remote(self.key)
