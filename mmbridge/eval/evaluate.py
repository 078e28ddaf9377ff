"""evaluate(): one call from provider names and a dataset to samples.jsonl, summary.json and the reports."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..client import Client
from ..config import Config, load_config
from ..data import load_dataset
from ..data.sample import Sample
from .report import render_html, render_markdown
from .runner import run_eval
from .summary import summarize

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


async def evaluate(
    providers: list[str],
    dataset: str,
    out: str | Path,
    *,
    tasks: set[str] | None = None,
    limit: int | None = None,
    concurrency: int = 8,
    seed: int = 0,
    config: Config | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run (or resume) an evaluation and write its files into ``out``; returns the summary."""
    if not providers:
        raise ValueError("name at least one provider")
    if len(set(providers)) != len(providers):
        raise ValueError("each provider may be named once")
    config = config or load_config()
    out = Path(out)
    samples = select(list(load_dataset(dataset, cache_dir=config.cache.dir)), tasks, limit, seed)
    clients = {name: Client(name, config=config) for name in providers}
    try:
        rows = await run_eval(clients, samples, out, concurrency=concurrency, progress=progress)
    finally:
        for client in clients.values():
            await client.aclose()
    summary = summarize(rows, samples, providers=providers, dataset=dataset, seed=seed)
    with atomic_write(out / "summary.json") as f:
        json.dump(summary, f, indent=2)
    with atomic_write(out / "report.md") as f:
        f.write(render_markdown(summary))
    with atomic_write(out / "report.html") as f:
        f.write(render_html(summary, rows, samples))
    return summary
