"""Limited: cap how many requests are in flight and how many start per minute."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref

from ..provider import Provider, WrapperProvider
from ..types import Request, Response

__all__ = ["Limited"]


class Limited(WrapperProvider):
    """At most ``max_concurrency`` calls at once, started at most ``requests_per_minute`` per minute.

    The rate is enforced by spacing starts evenly (60 / rpm seconds apart), which never bursts
    past a server's per-minute window. Both limits hold across every event loop using this object.
    """

    def __init__(
        self, inner: Provider, *, max_concurrency: int | None = None, requests_per_minute: float | None = None
    ) -> None:
        super().__init__(inner)
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        # asyncio primitives belong to one loop; keep one semaphore per loop, shared bound via count
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._next_start = 0.0

    def _semaphore(self) -> asyncio.Semaphore | None:
        if self.max_concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                sem = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
        return sem

    async def _wait_for_slot(self) -> None:
        if self.requests_per_minute is None:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + 60.0 / self.requests_per_minute
        if start > now:
            await asyncio.sleep(start - now)

    async def generate(self, request: Request) -> Response:
        await self._wait_for_slot()
        sem = self._semaphore()
        if sem is None:
            return await self.inner.generate(request)
        async with sem:
            return await self.inner.generate(request)
