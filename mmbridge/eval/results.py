"""A result row from what a provider answered (or the error it raised), and the row for a task it does not do."""

from __future__ import annotations

import time

from ..client import Client
from ..data.sample import Sample
from ..errors import UnsupportedTaskError
from ..types import Response
from .rows import Row, RowError
from .scoring import sample_score

__all__ = ["make_row", "unsupported_row"]


def make_row(sample: Sample, provider: str, response: Response | None, error: Exception | RowError | None) -> Row:
    base = {"sample_id": sample.id, "provider": provider, "task": sample.task, "type": sample.meta.get("type")}
    if response is not None:
        return Row(
            **base,
            prediction=response.text,
            answer=response.answer,
            label=response.label,
            score=sample_score(sample, response),
            confidence=response.confidence,
            warning=response.warning,
            latency_s=response.latency_s,
            service_s=response.service_s,
            answered_at=round(time.time(), 3),
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            cost_usd=response.usage.cost_usd,
            cached=response.cached,
        )
    if isinstance(error, UnsupportedTaskError):
        return Row(**base, unsupported=True)
    assert error is not None
    if isinstance(error, RowError):  # an error that happened elsewhere (a Ray worker), as it was reported
        return Row(**base, error=error)
    return Row(**base, error=RowError(type=type(error).__name__, message=str(error)))


def unsupported_row(sample: Sample, provider: str, client: Client) -> Row | None:
    """The row for a task ``provider`` does not do (written without asking it), or None when it does."""
    capabilities = client.provider.capabilities
    if sample.task in capabilities:
        return None
    return make_row(sample, provider, None, UnsupportedTaskError(provider, sample.task.value, capabilities))
