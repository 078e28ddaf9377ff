"""Ask every provider the same samples; append one row per (sample, provider) to samples.jsonl as answers arrive.

A run that is killed and started again reads the rows it has and asks only for the rest, and
again for the rows that hold an error (a transient outage is not frozen into the results). A
failed call is a row with an ``error`` (never an answer to score); a task a provider does not
support is a row marked ``unsupported``, written without calling it.
"""

from __future__ import annotations

import asyncio
import sys
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from ..batch import progress_bar, run_batch
from ..client import Client
from ..config import Config
from ..data.sample import Sample
from ..distributed.options import RayOptions
from ..errors import CacheError
from ..image import Image
from ..provider import identity_of, pace_of
from ..types import Response
from .dispatch import Dispatch
from .offline import answer_offline
from .on_ray import answer_with_ray
from .results import make_row
from .rows import ROWS_FILE, Row, compact_rows, read_rows
from .rundir import row_source

__all__ = ["ROWS_FILE", "read_rows", "run_eval"]
#: pictures larger than this (bytes) are read in a thread, off the event loop
LARGE_FILE = 128 * 1024


class _Pictures:
    """Each picture read (and decoded, and hashed) once while the samples that share it are asked.

    Samples of one image come together in a dataset, so the most recent ones are kept: up to
    ``keep`` of them, and up to ``budget`` bytes counting each as decoded (a 2048x1536 photo is
    9 MB of pixels: thousands of them would not fit in memory). Reading a file per sample also
    made requests reach the local model's batcher one by one after each forward pass, too slowly
    to fill the next batch.
    """

    def __init__(self, clients: Mapping[str, Client], keep: int = 4096, budget: int = 512 * 2**20) -> None:
        self.clients, self.keep, self.budget = clients, keep, budget
        self.seen: OrderedDict[tuple[str, Path], tuple[Image, int]] = OrderedDict()
        self.held = 0

    async def __call__(self, name: str, path: Path) -> Image:
        key = (name, path)
        found = self.seen.get(key)
        if found is not None:
            self.seen.move_to_end(key)
            return found[0]
        read = self.clients[name].image  # reads the file and its header: a photo's takes a millisecond
        image = await asyncio.to_thread(read, path) if _large(path) else read(path)
        size = 3 * image.pixel_count
        self.seen[key] = (image, size)
        self.held += size
        while len(self.seen) > self.keep or (self.held > self.budget and len(self.seen) > 1):
            self.held -= self.seen.popitem(last=False)[1][1]
        return image

    def release(self) -> None:
        self.seen.clear()
        self.held = 0


def _large(path: Path) -> bool:
    try:
        return path.stat().st_size > LARGE_FILE
    except OSError:
        return False  # the client's own read reports it


async def run_eval(
    clients: Mapping[str, Client],
    samples: list[Sample],
    out: Path,
    *,
    concurrency: Mapping[str, int] | None = None,
    progress: bool | None = None,
    keep_errors: bool = False,
    offline: frozenset[str] = frozenset(),
    fallback_sync: bool = False,
    poll_s: float | None = None,
    ray: tuple[Config, RayOptions] | None = None,
    sources: Mapping[str, str] | None = None,
    existing: list[Row] | None = None,
) -> tuple[list[Row], int]:
    """Fill ``out/samples.jsonl`` with a row per (sample, provider); returns every row and how
    many error rows of an earlier run were asked again (all of them unless ``keep_errors``).

    Each provider runs at its own pace: ``concurrency[name]`` calls at once (default
    ``provider.pace_of``), so the local model's batcher sees full batches while an API provider
    runs at its own limit, and neither waits for the other. Providers named in ``offline`` answer
    through their offline path (the Batch API; :mod:`mmbridge.eval.offline`); with
    ``fallback_sync``, what it could not answer is then asked the normal way. With ``ray`` (the
    config the workers build their providers from, and the pool's options), the other providers'
    requests are answered on a Ray cluster (:mod:`mmbridge.eval.on_ray`).

    ``sources`` (default: the clients') maps each provider to ``row_source`` of its identity, stamped
    on every row it writes; ``existing``: the rows already in ``out`` as ``rundir.record_run`` read and
    checked them (None: read here).
    """
    path = out / ROWS_FILE
    sources = dict(sources or {name: row_source(identity_of(c.provider)) for name, c in clients.items()})
    if existing is None:
        existing = await asyncio.to_thread(read_rows, path)
    found = {row.key: row for row in existing}
    done = {key for key, row in found.items() if row.error is None or keep_errors}
    wanted = [(s, name) for s in samples for name in clients]
    todo = [(s, name) for s, name in wanted if (s.id, name) not in done]
    reasked = sum(1 for s, name in todo if (s.id, name) in found)
    broken: list[CacheError] = []  # a cache that fails stops the run: answers would not be kept
    pictures = _Pictures(clients)
    dispatch = Dispatch(clients)
    with path.open("a", encoding="utf-8") as sink, progress_bar(progress, "evaluating") as bar:
        task = bar.add_task("evaluating", total=len(todo), failed=0) if bar is not None else None
        failed = retried = 0

        def keep(row: Row) -> None:
            nonlocal failed
            row = row.model_copy(update={"source": sources[row.provider]})
            sink.write(row.model_dump_json() + "\n")
            sink.flush()  # a row on disk is an answer a rerun will not ask for again
            found[row.key] = row
            failed += row.error is not None
            if bar is not None:
                bar.update(task, advance=1, failed=failed)

        async def ask(item: tuple[Sample, str]) -> None:
            if broken:
                return
            sample, name = item
            if (row := dispatch.unsupported(sample, name)) is not None:
                keep(row)
                return
            slow = dispatch.cached(name)  # a cache hashes the picture and reads the disk: not on the loop
            try:
                image = await pictures(name, sample.image)
                first = (
                    await asyncio.to_thread(dispatch.before, sample, name, image)
                    if slow
                    else dispatch.before(sample, name, image)
                )
                if isinstance(first, Row):
                    keep(first)
                    return
                try:
                    outcome: Response | Exception = await dispatch.bare[name].generate(first)
                except CacheError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure becomes an error row, counted apart
                    outcome = exc
                written = slow and isinstance(outcome, Response)
                keep(
                    await asyncio.to_thread(dispatch.after, sample, name, first, outcome)
                    if written
                    else dispatch.after(sample, name, first, outcome)
                )
            except CacheError as exc:
                broken.append(exc)
            except Exception as exc:  # noqa: BLE001 - a picture that cannot be read is that row's error
                keep(make_row(sample, name, None, exc))

        def notify(line: str) -> None:
            if bar is not None:
                bar.console.print(line, markup=False, highlight=False)
            else:
                print(line, file=sys.stderr, flush=True)

        def pace(name: str) -> int:
            return (concurrency or {}).get(name) or pace_of(clients[name].provider)

        async def batched(name: str, samples: list[Sample]) -> None:
            failed = await answer_offline(
                dispatch, name, samples, out, keep=keep, notify=notify, progress=bar, poll_s=poll_s
            )
            if failed and fallback_sync:
                notify(f"{name}: asking the {len(failed):,} requests the batches did not answer synchronously")
                if bar is not None:  # their error rows are about to be replaced: count them once
                    nonlocal retried
                    retried += len(failed)
                    bar.update(task, total=len(todo) + retried)
                await run_batch(ask, failed, concurrency=pace(name))

        pools = [  # one pool per provider, all at once
            batched(name, [s for s, _ in mine]) if name in offline else run_batch(ask, mine, concurrency=pace(name))
            for name in clients
            if (mine := [item for item in todo if item[1] == name]) and (ray is None or name in offline)
        ]
        if ray is not None:
            remote = [item for item in todo if item[1] not in offline]
            paces = {name: pace(name) for name in clients}
            pools.append(answer_with_ray(dispatch, remote, config=ray[0], options=ray[1], paces=paces, keep=keep))
        await asyncio.gather(*pools)
    if broken:
        raise broken[0]
    rows = list(found.values())
    await asyncio.to_thread(pictures.release)  # freeing hundreds of MB of pixels takes milliseconds
    await asyncio.to_thread(compact_rows, path, rows)  # one row per (sample, provider): a re-asked error's old row goes
    return rows, reasked
