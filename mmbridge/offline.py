"""Providers that answer a whole list at once, offline (the OpenAI Batch API): what the runner knows of them.

The evaluation runner answers cache hits itself and hands the rest to the provider's
``answer_offline``, which submits them, waits, and yields each answer (or error) by the id the
runner gave it. Requests are built only when the provider needs them, so tens of thousands of
pictures never sit in memory at once. The provider keeps whatever it must remember across a
kill (batch ids, which line is which) in ``OfflineSettings.folder``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from .types import Request, Response

__all__ = ["OFFLINE_FOLDER", "OfflineItem", "OfflineProvider", "OfflineSettings", "find_layer", "running_batches"]

T = TypeVar("T")
#: the folder inside a run's --out where offline providers keep their state, a file per provider:
#: JSON with a list ``batches`` whose entries have a ``status`` (the Batch API's words)
OFFLINE_FOLDER = "batches"
FINISHED = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class OfflineItem:
    """One request to answer offline, and the (sample, provider) row it fills."""

    sample_id: str
    provider: str
    request: Callable[[], Request]


@dataclass(frozen=True)
class OfflineSettings:
    #: where the provider keeps its state for this run: ``--out/batches``, a ``NAME.json`` per provider
    folder: Path
    #: one line per event a user should see (a batch submitted, a state change, a failure)
    notify: Callable[[str], None]
    #: a rich Progress to add a bar to, or None
    progress: Any = None
    #: seconds between polls; None: the provider's own setting
    poll_s: float | None = None


@runtime_checkable
class OfflineProvider(Protocol):
    #: whether evaluations send this provider's requests offline without being asked (``batch = true``)
    offline_by_default: bool

    def answer_offline(
        self, items: Mapping[str, OfflineItem], settings: OfflineSettings
    ) -> AsyncIterator[list[tuple[str, Response | Exception]]]:
        """Yield chunks of (item id, answer or error) until every item has one; ids it was not given
        (lines of an earlier run's batch that are no longer wanted) are left out."""
        ...

    async def offline_status(self, folder: Path, *, cancel: bool = False) -> list[dict[str, Any]]:
        """One row per batch this provider keeps in ``folder`` (id, status, counts), refreshed from the
        service; ``cancel``: cancel the ones still running first."""
        ...


def find_layer(provider: object, kind: type[T]) -> T | None:
    """The first layer of a provider stack (following ``inner``) that is a ``kind``."""
    layer: object | None = provider
    while layer is not None:
        if isinstance(layer, kind):
            return layer
        layer = getattr(layer, "inner", None)
    return None


def running_batches(out: Path) -> int:
    """How many batches the state files in ``out/batches`` record as not finished (an unreadable file counts as one)."""
    running = 0
    for path in (out / OFFLINE_FOLDER).glob("*.json"):
        try:
            batches = json.loads(path.read_bytes())["batches"]
            running += sum(1 for b in batches if b.get("status") not in FINISHED)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            running += 1
    return running
