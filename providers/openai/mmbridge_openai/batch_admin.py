"""``mmbridge batch status|cancel DIR`` for openai providers: a run's batches as the service sees them now."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch_state import TERMINAL, load_state, save_state

if TYPE_CHECKING:
    from .surface import BatchSurface

__all__ = ["batch_status"]


async def batch_status(provider: BatchSurface, folder: Path, *, cancel: bool = False) -> list[dict[str, Any]]:
    """Refresh (and with ``cancel``, cancel the running) batches recorded in ``folder/NAME.json``."""
    path = folder / f"{provider.name}.json"
    state = load_state(path, provider.name)
    client = provider.new_client()
    try:
        rows = await _refresh(provider, state.batches, client, cancel)
    finally:
        await client.close()
    if path.exists():
        save_state(path, state)
    return rows


async def _refresh(provider: BatchSurface, batches: list[Any], client: Any, cancel: bool) -> list[dict[str, Any]]:
    rows = []
    for record in batches:
        if record.batch_id is not None and record.status not in TERMINAL:
            with provider.translating():
                batch = await (client.batches.cancel if cancel else client.batches.retrieve)(record.batch_id)
            counts = batch.request_counts
            record.status = batch.status
            if counts is not None:
                record.counts = (counts.completed, counts.failed, counts.total)
        done, failed, total = record.counts
        rows.append(
            {
                "provider": provider.name,
                "batch": record.batch_id or f"(not created; input {record.input_file_id})",
                "status": record.status,
                "requests": len(record.lines),
                "done": done,
                "failed": failed,
                "collected": record.collected,
            }
        )
    return rows
