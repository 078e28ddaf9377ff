"""Retrying: what is retried, how long it waits, when it stops, and what it logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mmbridge import (
    AuthenticationError,
    BaseProvider,
    HTTPStatusError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    Request,
    Response,
    Retrying,
)


class Scripted(BaseProvider):
    """Raises the scripted errors in order, then answers."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__("scripted")
        self.errors = list(errors)
        self.calls = 0

    async def _generate(self, request: Request) -> Response:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Response(task=request.task, text="ok", provider=self.name)


@pytest.fixture
def waits() -> list[float]:
    return []


def _retrying(inner: Scripted, waits: list[float], **options: float) -> Retrying:
    async def record(seconds: float) -> None:  # no real sleeping: the waits are asserted instead
        waits.append(seconds)

    return Retrying(inner, sleep=record, **options)


async def test_retryable_errors_are_retried_until_success(shapes_png: Path, waits: list[float]) -> None:
    inner = Scripted(
        HTTPStatusError("server error", status_code=500),
        HTTPStatusError("bad gateway", status_code=503),
        ProviderTimeoutError("slow"),
        ProviderConnectionError("dropped"),
        HTTPStatusError("conflict", status_code=409),
    )
    response = await _retrying(inner, waits, max_attempts=6, initial_wait_s=0.5, max_wait_s=4).generate(
        Request.caption(shapes_png)
    )
    assert response.text == "ok" and inner.calls == 6
    assert len(waits) == 5 and all(0 <= w <= 4 for w in waits)


async def test_retry_after_is_honoured_and_capped(shapes_png: Path, waits: list[float]) -> None:
    inner = Scripted(
        RateLimitError("slow down", status_code=429, retry_after_s=1.25),
        RateLimitError("slow down", status_code=429, retry_after_s=300),
    )
    await _retrying(inner, waits, max_wait_s=10).generate(Request.caption(shapes_png))
    assert waits == [1.25, 10]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(shapes_png: Path, waits: list[float], status: int) -> None:
    cls = AuthenticationError if status in (401, 403) else HTTPStatusError
    inner = Scripted(cls("no", status_code=status))
    with pytest.raises(cls):
        await _retrying(inner, waits).generate(Request.caption(shapes_png))
    assert inner.calls == 1 and waits == []


async def test_insufficient_quota_is_not_retried(shapes_png: Path, waits: list[float]) -> None:
    inner = Scripted(RateLimitError("top up", status_code=429, code="insufficient_quota", retry_after_s=1))
    with pytest.raises(RateLimitError, match="top up"):
        await _retrying(inner, waits).generate(Request.caption(shapes_png))
    assert inner.calls == 1


async def test_gives_up_after_max_attempts_with_the_last_error(shapes_png: Path, waits: list[float]) -> None:
    inner = Scripted(*[HTTPStatusError(f"fail {i}", status_code=500) for i in range(10)])
    with pytest.raises(HTTPStatusError, match="fail 2"):
        await _retrying(inner, waits, max_attempts=3).generate(Request.caption(shapes_png))
    assert inner.calls == 3 and len(waits) == 2


async def test_deadline_stops_before_a_wait_that_would_pass_it(shapes_png: Path, waits: list[float]) -> None:
    inner = Scripted(*[RateLimitError("later", status_code=429, retry_after_s=30) for _ in range(5)])
    with pytest.raises(RateLimitError):
        await _retrying(inner, waits, max_wait_s=60, deadline_s=10).generate(Request.caption(shapes_png))
    assert inner.calls == 1 and waits == []


async def test_each_retry_is_logged_with_reason_and_wait(
    shapes_png: Path, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    inner = Scripted(RateLimitError("slow down", status_code=429, retry_after_s=0.5))
    with caplog.at_level(logging.INFO, logger="mmbridge.retry"):
        await _retrying(inner, waits).generate(Request.caption(shapes_png))
    [record] = caplog.records
    assert "RateLimitError" in record.getMessage() and "in 0.50 s" in record.getMessage()
    assert "attempt 2 of 5" in record.getMessage()
