"""Gather concurrent requests into batches for one worker thread (the pattern of inspect_ai's hf.py):
the local providers' (torch, hf) way to turn concurrent calls into one forward pass.

``submit`` is called from any event loop; the calls a loop submits in one turn are handed to the
worker together. The worker takes what has arrived, collects more until ``max_batch``, or until
none has come for ``max_wait_ms``, or at most ``MAX_WAITS`` times that in all; then it runs ``fn``
on them together and hands each result back to the loop that asked. ``call`` runs other work on
the worker thread between batches. 256 concurrent calls cost about one batched forward pass. The
wait counts from the latest arrival, not the first: callers that build each request before
submitting it (an evaluation reading pictures) arrive a fraction of a millisecond apart, and a
fixed window closed a batch after the first few of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from .errors import ProviderError

__all__ = ["Batcher", "batch_failure", "stamp_service"]

T = TypeVar("T")
R = TypeVar("R")
_STOP = object()
#: a batch waits at most this many times max_wait_ms in all, however steadily requests arrive
MAX_WAITS = 20


class _Call:
    """Work handed to the worker thread by ``Batcher.call``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run(self) -> None:
        try:
            self.done.set_result(self.fn())
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self.done.set_exception(exc)


class Batcher(Generic[T, R]):
    def __init__(
        self,
        fn: Callable[[Sequence[T]], Sequence[R | BaseException]],
        *,
        max_batch: int,
        max_wait_ms: float,
        name: str = "mmbridge-batcher",
        stamp: Callable[[R, float], R] | None = None,
    ) -> None:
        self.fn = fn
        #: called on each result with the seconds its batch took (a Response records it as service_s)
        self.stamp = stamp
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self._queue: queue.Queue[Any] = queue.Queue()  # lists of (item, future, loop), a _Call, or _STOP
        self._arriving: dict[asyncio.AbstractEventLoop, list[Any]] = {}  # per loop, handed over once a turn
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()
        self.batches = 0  # how many batches ran: tests and benchmarks read it

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        # the calls a loop submits in one turn go to the worker together: 16 calls at once used to
        # wake the worker 16 times (each put a GIL hand-over between the two threads)
        arriving = self._arriving.get(loop)
        if arriving is None:
            arriving = self._arriving[loop] = []
            loop.call_soon(self._hand_over, loop)
        arriving.append((item, future, loop))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        arrived = self._arriving.pop(loop, None)
        if arrived:  # close() may have handed them over already
            self._queue.put(arrived)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the worker thread between batches and return what it returns (or raise what
        it raises). Torch work timed against a batch (a benchmark's bare loop) belongs on this thread:
        each thread that calls torch has OpenMP workers of its own, and two sets contend for the cores."""
        work = _Call(fn)
        self._queue.put(work)
        return work.done.result()

    def _collect(self, waiting: deque[Any], calls: list[_Call]) -> list[Any]:
        """Up to ``max_batch`` entries: those already handed over, then more as they arrive."""
        batch = _take(waiting, self.max_batch)
        now = time.monotonic()
        last_call = now + self.max_wait_s * MAX_WAITS
        deadline = min(now + self.max_wait_s, last_call)
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                got = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if got is _STOP:
                self._queue.put(_STOP)  # finish this batch, then stop
                break
            if isinstance(got, _Call):
                calls.append(got)  # run after this batch
                continue
            waiting.extend(got)
            batch += _take(waiting, self.max_batch - len(batch))
            deadline = min(time.monotonic() + self.max_wait_s, last_call)
        return batch

    def _work(self) -> None:
        waiting: deque[Any] = deque()  # handed over, not yet in a batch (a hand-over can exceed max_batch)
        while True:
            if not waiting:
                got = self._queue.get()
                if got is _STOP:
                    return
                if isinstance(got, _Call):
                    got.run()
                    continue
                waiting.extend(got)
            calls: list[_Call] = []
            batch = [entry for entry in self._collect(waiting, calls) if not entry[1].cancelled()]
            self._run(batch)
            for work in calls:
                work.run()

    def _run(self, batch: list[Any]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        try:
            results: Sequence[Any] = self.fn([entry[0] for entry in batch])
        except BaseException as exc:  # noqa: BLE001 - delivered to every waiting caller
            results = [exc] * len(batch)
        if self.stamp is not None:
            took = time.perf_counter() - start
            results = [r if isinstance(r, BaseException) else self.stamp(r, took) for r in results]
        self.batches += 1
        for (_, future, loop), result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_deliver, future, result)

    def close(self) -> None:
        for loop in list(self._arriving):  # calls submitted this turn are answered before the worker stops
            self._hand_over(loop)
        self._queue.put(_STOP)
        self._thread.join(timeout=30)


def _take(waiting: deque[Any], most: int) -> list[Any]:
    """Up to ``most`` entries from the front of ``waiting``, oldest first."""
    return [waiting.popleft() for _ in range(min(most, len(waiting)))]


def _deliver(future: asyncio.Future[Any], result: Any) -> None:
    if future.cancelled():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def stamp_service(response: Any, seconds: float) -> Any:
    """A Response with ``service_s``: the time of the batch it was answered in."""
    return response.model_copy(update={"service_s": seconds})


def batch_failure(provider: str, exc: BaseException, batch: int, knob: str) -> ProviderError:
    """A local model's failure on a batch as a ProviderError (so Fallback moves on and the CLI exits 1),
    in one line; out of memory names the option (``knob``) that makes batches smaller."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return ProviderError(f"out of memory on a batch of {batch}; lower {knob} ({text})", provider=provider)
    return ProviderError(
        f"the local model failed on a batch of {batch}: {type(exc).__name__}: {text}", provider=provider
    )
