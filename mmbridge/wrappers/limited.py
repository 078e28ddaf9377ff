"""Limited: cap how many requests are in flight and how many start per minute."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from ..provider import Provider, WrapperProvider
from ..types import Request, Response

__all__ = ["Limited", "SharedSlots"]


class SharedSlots:
    """A counting semaphore that coroutines on any thread's event loop can wait on together.

    asyncio's Semaphore belongs to one loop: one per loop would let each loop run ``limit`` calls.
    Here a thread lock guards the count, and a slot freed on one loop wakes a waiter on another
    through ``call_soon_threadsafe``. Waiters are served first come, first served.
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            waiter = (loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter[1]
        except asyncio.CancelledError:
            with self._lock:
                queued = waiter in self._waiters
                if queued:
                    self._waiters.remove(waiter)
            if not queued and waiter[1].done() and not waiter[1].cancelled():
                self.release()  # the slot arrived just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        with self._lock:
            if not self._waiters:
                self._free += 1
                return
            loop, future = self._waiters.popleft()
        loop.call_soon_threadsafe(self._hand_over, future)

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self.release()  # its waiter left before the slot reached it
        else:
            future.set_result(None)


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
        self._slots = SharedSlots(max_concurrency) if max_concurrency is not None else None
        self._lock = threading.Lock()
        self._next_start = 0.0

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
        if self._slots is None:
            return await self.inner.generate(request)
        await self._slots.acquire()
        try:
            return await self.inner.generate(request)
        finally:
            self._slots.release()
