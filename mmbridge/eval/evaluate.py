"""evaluate(): one call from provider names and a dataset to samples.jsonl, summary.json and the reports."""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_write
from ..client import Client
from ..config import Config, load_config
from ..data import load_dataset
from ..data.sample import Sample
from ..distributed.options import RayOptions
from ..errors import ConfigError
from ..provider import pace_of
from .offline import offline_layer
from .report import render_html, render_markdown
from .rows import Row
from .rundir import exclusive, record_inputs, record_run, row_source, run_identity
from .runner import run_eval
from .summary import summarize
from .summary_model import Summary

__all__ = ["evaluate", "select"]


def select(samples: list[Sample], tasks: set[str] | None, limit: int | None, seed: int) -> list[Sample]:
    """The samples of ``tasks``; with ``limit``, a seeded random ``limit`` of each task (file order kept)."""
    kept = [s for s in samples if tasks is None or s.task.value in tasks]
    if limit is None:
        return kept
    chosen: set[str] = set()
    for task in sorted({s.task.value for s in kept}):
        ids = [s.id for s in kept if s.task.value == task]
        chosen.update(random.Random(f"{seed}:{task}").sample(ids, min(limit, len(ids))))
    return [s for s in kept if s.id in chosen]


def _write_reports(out: Path, summary: Summary, rows: list[Row], samples: list[Sample]) -> None:
    with atomic_write(out / "summary.json") as f:
        f.write(summary.to_json())
    with atomic_write(out / "report.md") as f:
        f.write(render_markdown(summary))
    with atomic_write(out / "report.html") as f:
        f.write(render_html(summary, rows, samples))


def _pace(name: str, client: Client, given: int | Mapping[str, int] | None) -> int:
    """Calls at once for one provider: named, else given for all, else its own, else the default."""
    if isinstance(given, Mapping) and name in given:
        return given[name]
    if isinstance(given, int):
        return given
    return pace_of(client.provider)


def _offline(clients: Mapping[str, Client], asked: bool) -> frozenset[str]:
    """The providers that answer through their offline path: all that can when ``asked``, else those set to."""
    able = {name: layer for name, client in clients.items() if (layer := offline_layer(client)) is not None}
    if asked and not able:
        raise ConfigError("--batch: none of these providers answers in batches; openai providers do")
    return frozenset(name for name, layer in able.items() if asked or layer.offline_by_default)


async def evaluate(
    providers: list[str],
    dataset: str,
    out: str | Path,
    *,
    tasks: set[str] | None = None,
    limit: int | None = None,
    concurrency: int | Mapping[str, int] | None = None,
    seed: int = 0,
    config: Config | None = None,
    progress: bool | None = None,
    restart: bool = False,
    keep_errors: bool = False,
    batch: bool = False,
    batch_fallback: str = "none",
    batch_poll_s: float | None = None,
    executor: RayOptions | None = None,
) -> Summary:
    """Run (or resume) an evaluation and write its files into ``out``; returns the summary.

    ``out`` has one writer at a time, and resumes only a run of the same samples and provider
    identities (see :mod:`mmbridge.eval.rundir`); ``restart`` empties it first. Error rows of an
    earlier run are asked again unless ``keep_errors``. ``concurrency`` is calls at once for every
    provider (an int) or by name (a mapping); a provider it does not cover runs at its own
    ``max_concurrency`` or batch size (:func:`mmbridge.provider.concurrency_of`), else 8.

    ``batch``: providers that can (``openai``) answer through the Batch API, as those whose config
    says ``batch = true`` always do; ``batch_fallback="sync"`` asks what a batch could not answer
    the normal way; ``batch_poll_s`` overrides their seconds between polls.

    ``executor``: answer on a Ray cluster (:class:`mmbridge.distributed.RayOptions`) instead of in
    this process; the rows, summary and reports are the same.
    """
    if batch_fallback not in ("none", "sync"):
        raise ConfigError(f"batch_fallback {batch_fallback!r}: use none or sync")
    if not providers:
        raise ConfigError("name at least one provider")
    twice = sorted({p for p in providers if providers.count(p) > 1})
    if twice:
        raise ConfigError(f"provider {', '.join(twice)} is named more than once; name each provider once")
    config = config or load_config()
    out = Path(out)
    with exclusive(out):

        def prepare() -> tuple[list[Sample], dict[str, Client], dict[str, Any]]:
            samples = select(list(load_dataset(dataset, cache_dir=config.cache.dir)), tasks, limit, seed)
            clients = {name: Client(name, config=config) for name in providers}
            identity = run_identity(
                version=__version__,
                dataset=dataset,
                samples=samples,
                tasks=tasks,
                limit=limit,
                seed=seed,
                providers={name: client.provider for name, client in clients.items()},
            )
            return samples, clients, identity

        # reading data, loading models and writing reports take seconds: not on the event loop
        samples, clients, identity = await asyncio.to_thread(prepare)
        # the samples and models just loaded live until the end: left to the collector, each of its
        # passes walks them all, on the event loop (pauses of 10 ms and more measured here)
        gc.freeze()
        try:
            offline = _offline(clients, batch)
            ids = {s.id for s in samples}
            record, existing = await asyncio.to_thread(record_run, out, identity, ids, restart=restart)
            await asyncio.to_thread(record_inputs, out, samples)
            paces = {name: _pace(name, client, concurrency) for name, client in clients.items()}
            rows, reasked = await run_eval(
                clients,
                samples,
                out,
                concurrency=paces,
                progress=progress,
                keep_errors=keep_errors,
                offline=offline,
                fallback_sync=batch_fallback == "sync",
                poll_s=batch_poll_s,
                ray=(config, executor) if executor is not None else None,
                sources={name: row_source(mine) for name, mine in record["providers"].items()},
                existing=existing,
            )
        finally:
            for client in clients.values():
                await client.aclose()
            gc.unfreeze()
        summary = await asyncio.to_thread(
            summarize,
            rows,
            samples,
            providers=providers,
            dataset=dataset,
            seed=seed,
            reasked_errors=reasked,
            batch=offline,
        )
        await asyncio.to_thread(_write_reports, out, summary, rows, samples)
    return summary
