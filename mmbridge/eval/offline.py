"""The evaluation's offline path (``--batch``): cache hits answered here, the rest by a provider's answer_offline.

Answers are stored in the cache under the key a synchronous call would use, so a later
synchronous run hits them, and written to samples.jsonl as each chunk arrives. Whatever the
offline path could not answer is an error row, or with ``--batch-fallback sync`` goes back to
the caller to be asked the normal way.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..client import Client
from ..data.sample import Sample
from ..offline import OFFLINE_FOLDER, OfflineItem, OfflineProvider, OfflineSettings, find_layer
from ..types import Response
from .dispatch import Dispatch
from .rows import Row

__all__ = ["answer_offline", "offline_layer"]


def offline_layer(client: Client) -> OfflineProvider | None:
    return find_layer(client.provider, OfflineProvider)  # type: ignore[type-abstract]


def custom_id(sample_id: str, provider: str) -> str:
    """The same (sample, provider) gets the same id in every run, so a rerun knows its lines."""
    return hashlib.sha256(f"{provider}\0{sample_id}".encode()).hexdigest()[:32]


async def answer_offline(
    dispatch: Dispatch,
    name: str,
    samples: list[Sample],
    out: Path,
    *,
    keep: Callable[[Row], None],
    notify: Callable[[str], None],
    progress: Any = None,
    poll_s: float | None = None,
) -> list[tuple[Sample, str]]:
    """Answer ``samples`` for provider ``name`` offline, keeping a row for each; returns the ones that
    failed (their error rows are kept too, and replaced if the caller asks them again)."""
    client = dispatch.clients[name]
    offline = offline_layer(client)
    assert offline is not None
    asked = []
    for sample in samples:
        if (row := dispatch.unsupported(sample, name)) is not None:
            keep(row)
        else:
            asked.append(sample)

    def request(sample: Sample) -> Any:
        return sample.to_request(client.image(sample.image))

    def split() -> tuple[list[Row], dict[str, OfflineItem], dict[str, Sample]]:
        hits, items, by_id = [], {}, {}
        for sample in asked:
            first = dispatch.before(sample, name, client.image(sample.image))
            if isinstance(first, Row):
                hits.append(first)
            else:  # the picture is read again when its batch line is written: thousands are not kept
                cid = custom_id(sample.id, name)
                items[cid], by_id[cid] = OfflineItem(sample.id, name, partial(request, sample)), sample
        return hits, items, by_id

    hits, items, by_id = await asyncio.to_thread(split)  # hashing pictures: not on the event loop
    for row in hits:
        keep(row)
    if not items:
        return []
    notify(f"{name}: {len(items):,} requests to answer in batches ({len(hits):,} found in the cache)")

    def finish(chunk: list[tuple[str, Response | Exception]]) -> list[Row]:
        # a request is built again (its picture read) only for an answer, to key it in the cache
        return [
            dispatch.after(by_id[cid], name, items[cid].request if isinstance(outcome, Response) else None, outcome)
            for cid, outcome in chunk
        ]

    failed: list[tuple[Sample, str]] = []
    settings = OfflineSettings(folder=out / OFFLINE_FOLDER, notify=notify, progress=progress, poll_s=poll_s)
    async for chunk in offline.answer_offline(items, settings):
        for row in await asyncio.to_thread(finish, chunk):
            keep(row)
            if row.error is not None:
                failed.append((by_id[custom_id(row.sample_id, name)], name))
    return failed
