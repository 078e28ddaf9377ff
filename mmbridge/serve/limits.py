"""What one server accepts and for how long, and the admission count that turns overload into 429s."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, fields

from ..bounds import Concurrency, Count, Seconds, Waiting, check
from ..errors import ConfigError

__all__ = ["DEFAULT_CONCURRENCY", "Admission", "Overloaded", "ServeLimits"]

#: requests answered at once when neither the limits nor the provider's max_concurrency say
DEFAULT_CONCURRENCY = 256  # the local model's largest batch


@dataclass(frozen=True)
class ServeLimits:
    """Every bound a server keeps. Each one, when hit, is answered in the OpenAI error format."""

    #: the largest request body (413 beyond it)
    max_body_bytes: int = 20_000_000
    #: image_url parts a request may carry (every task takes one)
    max_images: int = 1
    #: requests answered at once; None: the provider's own max_concurrency, else DEFAULT_CONCURRENCY
    max_concurrency: int | None = None
    #: requests that may wait for a place beyond those; one more gets 429 with Retry-After
    max_waiting: int = 64
    #: a request's headers, and then its body, must each arrive within this many seconds (else 408)
    read_timeout_s: float = 10.0
    #: the longest a request may take once it has arrived, waiting included (else 504)
    request_timeout_s: float = 120.0
    #: on SIGTERM or Ctrl-C, requests in flight get this long to finish before the server exits
    shutdown_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        bounds = {"max_body_bytes": Count(1, 10**10), "max_images": Count(1, 16), "max_concurrency": Concurrency}
        for field in fields(self):
            value = getattr(self, field.name)
            kind = Seconds if field.name.endswith("_s") else bounds.get(field.name, Waiting)
            try:
                if value is not None:
                    check(kind, value, field.name)
            except ValueError as exc:
                raise ConfigError(f"serve limits: {exc}") from None


class Overloaded(Exception):
    """Every place to answer and to wait is taken; ``retry_after_s`` is an estimate of when one frees."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Admission:
    """At most ``concurrency`` requests answered at once and ``max_waiting`` waiting; the rest refused.

    Used from the server's one event loop only. Keeps a moving average of how long an answer
    takes, so a refusal can say when to come back.
    """

    def __init__(self, concurrency: int, max_waiting: int) -> None:
        self.concurrency, self.max_waiting = concurrency, max_waiting
        self._slots = asyncio.Semaphore(concurrency)
        self.active = 0
        self.waiting = 0
        self._mean_s = 1.0  # until the first answers are timed

    async def enter(self) -> None:
        if self.active < self.concurrency and not self.waiting:
            await self._slots.acquire()  # free: returns at once
        elif self.waiting >= self.max_waiting:
            ahead = self.waiting + self.active
            raise Overloaded(max(1, math.ceil(self._mean_s * ahead / self.concurrency)))
        else:
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        self.active += 1

    def leave(self, seconds: float | None) -> None:
        """Free the place; ``seconds`` is how long the answer took (None when it did not finish)."""
        self.active -= 1
        self._slots.release()
        if seconds is not None:
            self._mean_s += 0.1 * (seconds - self._mean_s)
