"""Retrying: the one retry layer (tenacity underneath); SDK retries stay off so nothing retries twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import HTTPStatusError, ProviderError
from ..provider import Provider, WrapperProvider
from ..types import Request, Response

__all__ = ["Retrying", "is_retryable"]

log = logging.getLogger("mmbridge.retry")


def is_retryable(exc: BaseException) -> bool:
    """408, 409, 429 (not ``insufficient_quota``), 5xx, timeouts and dropped connections."""
    return isinstance(exc, ProviderError) and bool(exc.retryable)


class Retrying(WrapperProvider):
    """Retries retryable :class:`ProviderError` s with exponential backoff and full jitter.

    A wait the server asks for (``retry-after-ms`` / ``retry-after``) is honoured instead of the
    backoff, capped by ``max_wait_s``. ``deadline_s`` stops before a wait that would pass it.
    Each retry is logged at INFO with the reason and the wait; messages carry no secrets.
    """

    def __init__(
        self,
        inner: Provider,
        *,
        max_attempts: int = 5,
        max_wait_s: float = 60.0,
        deadline_s: float | None = None,
        initial_wait_s: float = 0.5,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.deadline_s = deadline_s
        self.initial_wait_s = initial_wait_s
        self._sleep = sleep

    def _wait(self, state: Any) -> float:
        import tenacity

        exc = state.outcome.exception()
        if isinstance(exc, HTTPStatusError) and exc.retry_after_s is not None:
            return min(max(exc.retry_after_s, 0.0), self.max_wait_s)
        backoff = tenacity.wait_random_exponential(multiplier=self.initial_wait_s, max=self.max_wait_s)
        return float(backoff(state))

    def _log(self, state: Any) -> None:
        exc = state.outcome.exception()
        log.info(
            "retrying %s after %s: %s (attempt %d of %d in %.2f s)",
            self.inner.name,
            type(exc).__name__,
            exc,
            state.attempt_number + 1,
            self.max_attempts,
            state.next_action.sleep,
        )

    async def generate(self, request: Request) -> Response:
        # Most calls succeed at once: try first, and pay for tenacity's machinery only on failure.
        start = time.monotonic()
        try:
            return await self.inner.generate(request)
        except Exception as exc:
            if self.max_attempts == 1 or not is_retryable(exc):
                raise
            first_failure = exc
        return await self._retry(request, first_failure, time.monotonic() - start)

    async def _retry(self, request: Request, first_failure: Exception, spent_s: float) -> Response:
        import tenacity

        replayed = False

        async def attempt() -> Response:
            nonlocal replayed
            if not replayed:  # tenacity counts and waits for the failure that already happened
                replayed = True
                raise first_failure
            return await self.inner.generate(request)

        stop = tenacity.stop_after_attempt(self.max_attempts)
        if self.deadline_s is not None:
            stop = stop | tenacity.stop_before_delay(max(self.deadline_s - spent_s, 0.0))
        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception(is_retryable),
            before_sleep=self._log,
            sleep=self._sleep,
            reraise=True,
        )
        return await retrying(attempt)
