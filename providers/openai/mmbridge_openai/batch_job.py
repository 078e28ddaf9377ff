"""BatchJob: a run's requests through the OpenAI Batch API (submit, poll, collect), resumable after a kill.

The order of writes is what makes a kill harmless: the input file's id is recorded before its
batch is created, the batch's id as soon as it exists (a kill in between: the rerun finds the
batch by its input file), and a batch is marked collected only after its answers were handed
to the runner. A rerun therefore polls the batches it has, and submits only lines that are in
no live batch.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from mmbridge.errors import BatchError, ProviderError, ProviderResponseError
from mmbridge.offline import OfflineItem, OfflineSettings
from mmbridge.types import Response

from .batch_lines import ENDPOINT, fill_file
from .batch_state import TERMINAL, BatchRecord, load_state, save_state

if TYPE_CHECKING:
    import openai

    from .surface import BatchSurface

__all__ = ["BatchJob"]

Outcome = tuple[str, Response | Exception]
#: lines turned into answers per step off the event loop (and per chunk handed to the runner)
CHUNK = 1000
#: polls in a row that may fail (connection, 5xx) before the run gives up; a rerun resumes
MAX_POLL_FAILURES = 10


class BatchJob:
    def __init__(self, provider: BatchSurface, settings: OfflineSettings) -> None:
        self.provider = provider
        self.name = provider.name
        self.settings = settings
        self.path = settings.folder / f"{provider.name}.json"
        self.state = load_state(self.path, provider.name)
        self.poll_s = settings.poll_s or provider.options.batch_poll_s

    def _save(self) -> None:
        save_state(self.path, self.state)

    def _notify(self, message: str) -> None:
        self.settings.notify(f"{self.name}: {message}")

    async def run(self, items: Mapping[str, OfflineItem]) -> AsyncIterator[list[Outcome]]:
        client = self.provider.new_client()  # the job's own: it waits on this loop for hours, not on the portal
        try:
            async for chunk in self._run(client, items):
                yield chunk
        finally:
            await client.close()

    async def _run(self, client: openai.AsyncOpenAI, items: Mapping[str, OfflineItem]) -> AsyncIterator[list[Outcome]]:
        for leftover in self.path.parent.glob(f".{self.name}-input-*.jsonl.tmp"):  # a kill while writing one
            leftover.unlink(missing_ok=True)
        live = [r for r in self.state.batches if r.live]
        if live:
            waiting = sum(len(r.lines) for r in live)
            self._notify(f"resuming {len(live)} batch(es) of an earlier run ({waiting:,} requests)")
        for record in live:
            if record.batch_id is None:
                await self._adopt_or_create(client, record)
        in_flight = {cid for r in live for cid in r.lines}
        rejected = await self._submit(client, items, [cid for cid in items if cid not in in_flight])
        if rejected:
            yield rejected
        async for chunk in self._poll(client, items):
            yield chunk

    # -- submitting -----------------------------------------------------------------------------

    async def _submit(
        self, client: openai.AsyncOpenAI, items: Mapping[str, OfflineItem], new: list[str]
    ) -> list[Outcome]:
        """Write, upload and create batches for ``new``; returns the lines too large for any file."""
        if not new:
            return []
        o = self.provider.options
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pending, first, rejected = iter(new), None, []

        def body(custom_id: str) -> dict[str, Any]:
            return self.provider.request_body(items[custom_id].request())

        while True:
            path = self.path.parent / f".{self.name}-input-{len(self.state.batches)}.jsonl.tmp"
            try:
                written, first = await asyncio.to_thread(
                    fill_file,
                    path,
                    pending,
                    body,
                    max_requests=o.batch_max_requests,
                    max_bytes=int(o.batch_max_mb * 1e6),
                    first=first,
                )
                rejected += [
                    (cid, BatchError(why, code="line_too_large", provider=self.name))
                    for cid, why in written.rejected.items()
                ]
                if written.custom_ids:
                    with self.provider.translating(), path.open("rb") as f:
                        uploaded = await client.files.create(file=(f"{self.name}-input.jsonl", f), purpose="batch")
                    lines = {cid: (items[cid].sample_id, items[cid].provider) for cid in written.custom_ids}
                    record = BatchRecord(input_file_id=uploaded.id, lines=lines)
                    self.state.batches.append(record)
                    self._save()
                    await self._create(client, record)
            finally:
                path.unlink(missing_ok=True)
            if first is None:
                return rejected

    async def _create(self, client: openai.AsyncOpenAI, record: BatchRecord) -> None:
        with self.provider.translating():
            batch = await client.batches.create(
                input_file_id=record.input_file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"mmbridge_provider": self.name[:500]},
            )
        record.batch_id, record.status = batch.id, batch.status
        self._save()
        self._notify(f"submitted batch {batch.id} ({len(record.lines):,} requests, {record.input_file_id})")

    async def _adopt_or_create(self, client: openai.AsyncOpenAI, record: BatchRecord) -> None:
        """A batch whose creation a kill interrupted: find it by its input file, else create it now."""
        with self.provider.translating():
            async for batch in client.batches.list(limit=100):
                if batch.input_file_id == record.input_file_id:
                    record.batch_id, record.status = batch.id, batch.status
                    self._save()
                    return
                if batch.created_at < record.created_at - 3600:  # newest first: it is not there
                    break
        await self._create(client, record)

    # -- waiting --------------------------------------------------------------------------------

    async def _poll(self, client: openai.AsyncOpenAI, items: Mapping[str, OfflineItem]) -> AsyncIterator[list[Outcome]]:
        live = [r for r in self.state.batches if r.live]
        watched = list(live)
        bar, task = self.settings.progress, None
        if bar is not None and live:
            task = bar.add_task(f"batch {self.name}", total=sum(len(r.lines) for r in live), failed=0)
        failures = 0
        while live:
            for record in list(live):
                try:
                    with self.provider.translating():
                        batch = await client.batches.retrieve(str(record.batch_id))
                    failures = 0
                except ProviderError as exc:
                    failures += 1
                    if not exc.retryable or failures >= MAX_POLL_FAILURES:
                        raise
                    self._notify(f"polling batch {record.batch_id} failed ({exc}); trying again")
                    continue
                self._seen(record, batch)
                if batch.status in TERMINAL:
                    async for chunk in self._collect(client, record, batch, items):
                        yield chunk
                    record.collected = True  # only now: a kill before this collects it again
                    self._save()
                    live.remove(record)
            if bar is not None:
                done = sum(r.counts[0] + r.counts[1] for r in watched)
                bar.update(task, completed=done, failed=sum(r.counts[1] for r in watched))
            if live:
                await asyncio.sleep(self.poll_s * random.uniform(0.8, 1.2))

    def _seen(self, record: BatchRecord, batch: Any) -> None:
        """Note the batch's counts; a change of state is a line and is saved (counts alone are not)."""
        counts = batch.request_counts
        if counts is not None:
            record.counts = (counts.completed, counts.failed, counts.total)
        if batch.status != record.status:
            done, failed, total = record.counts
            self._notify(
                f"batch {batch.id}: {record.status} -> {batch.status} ({done:,} done, {failed:,} failed of {total:,})"
            )
            record.status = batch.status
            self._save()

    # -- collecting -----------------------------------------------------------------------------

    async def _collect(
        self, client: openai.AsyncOpenAI, record: BatchRecord, batch: Any, items: Mapping[str, OfflineItem]
    ) -> AsyncIterator[list[Outcome]]:
        wanted = {cid for cid in record.lines if cid in items}
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors and batch.errors.data else []
            reason = "; ".join(f"{e.code}: {e.message}" for e in errors) or "no reason given"
            self._notify(
                f"batch {batch.id} failed validation: {reason}; its {len(record.lines):,} requests are error rows "
                "and a rerun submits them again (or use --batch-fallback sync)"
            )
            error = BatchError(
                f"batch failed validation ({reason})", code=errors[0].code if errors else None, provider=self.name
            )
            yield [(cid, error) for cid in wanted]
            return
        answered: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            async for lines in self._lines(client, file_id):
                chunk = await asyncio.to_thread(self._outcomes, lines, items)
                answered.update(cid for cid, _ in chunk)
                yield [(cid, outcome) for cid, outcome in chunk if cid in wanted]
        missing = wanted - answered
        if missing:
            error = BatchError(
                f"the batch was {batch.status} before this request was answered",
                code=f"batch_{batch.status}",
                provider=self.name,
            )
            yield [(cid, error) for cid in missing]

    async def _lines(self, client: openai.AsyncOpenAI, file_id: str) -> AsyncIterator[list[str]]:
        """A result file's lines, streamed, CHUNK at a time."""
        chunk: list[str] = []
        with self.provider.translating():
            async with client.files.with_streaming_response.content(file_id) as response:
                async for line in response.iter_lines():
                    if line.strip():
                        chunk.append(line)
                    if len(chunk) >= CHUNK:
                        yield chunk
                        chunk = []
        if chunk:
            yield chunk

    def _outcomes(self, lines: list[str], items: Mapping[str, OfflineItem]) -> list[Outcome]:
        out: list[Outcome] = []
        for line in lines:
            try:
                record = json.loads(line)
                cid = record["custom_id"]
            except (ValueError, KeyError, TypeError):
                continue  # not a result line: its request is reported missing
            if cid in items:
                out.append((cid, self._outcome(record, items[cid])))
        return out

    def _outcome(self, record: dict[str, Any], item: OfflineItem) -> Response | Exception:
        error, response = record.get("error"), record.get("response") or {}
        if error:
            return BatchError(str(error.get("message") or "no message"), code=error.get("code"), provider=self.name)
        status = response.get("status_code")
        if status != 200:
            return self.provider.status_error(int(status or 500), response.get("body"))
        try:
            return self.provider.read_body(item.request(), response.get("body") or {})
        except (ValueError, TypeError) as exc:
            return ProviderResponseError(f"unreadable batch answer ({type(exc).__name__})", provider=self.name)
