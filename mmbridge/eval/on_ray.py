"""The evaluation's Ray path (``--executor ray``): the driver answers cache hits, the cluster the rest.

Rows stream back from the actors as their blocks finish and are appended to samples.jsonl at
once, by the event loop (the one writer), so a killed run resumes exactly as a local one does;
answers go into the driver's cache. Each picture is sent once, however many rows ask about it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import Config
from ..data.sample import Sample
from ..distributed.executor import Pictures, answer_on_ray, work_row
from ..distributed.options import RayOptions
from ..types import Request, Response
from .dispatch import Dispatch
from .rows import Row, RowError

__all__ = ["answer_with_ray"]


async def answer_with_ray(
    dispatch: Dispatch,
    todo: list[tuple[Sample, str]],
    *,
    config: Config,
    options: RayOptions,
    paces: Mapping[str, int],
    keep: Callable[[Row], None],
) -> None:
    loop = asyncio.get_running_loop()

    def emit(row: Row) -> None:  # from the worker thread: the row is written on the loop
        loop.call_soon_threadsafe(keep, row)

    await asyncio.to_thread(_run, dispatch, todo, config, options, dict(paces), emit)


def _run(
    dispatch: Dispatch,
    todo: list[tuple[Sample, str]],
    config: Config,
    options: RayOptions,
    paces: dict[str, int],
    emit: Callable[[Row], None],
) -> None:
    pending: list[tuple[Sample, str, Request]] = []  # with its request: the cache key is known from it
    work: list[dict[str, Any]] = []
    pictures: Pictures | None = None
    keys: dict[Path, str] = {}  # each file read and hashed once
    for sample, name in todo:
        if (row := dispatch.unsupported(sample, name)) is not None:
            emit(row)
            continue
        first = dispatch.before(sample, name, dispatch.clients[name].image(sample.image))
        if isinstance(first, Row):
            emit(first)
            continue
        pictures = pictures or Pictures(options)
        if sample.image not in keys:
            keys[sample.image] = pictures.add(sample.image.read_bytes())
        work.append(work_row(len(pending), name, first, keys[sample.image]))
        pending.append((sample, name, first))
    if pictures is None:
        return
    for result in answer_on_ray(config, list(dispatch.clients), work, pictures, options, paces):
        sample, name, request = pending[result["i"]]
        outcome: Response | RowError = (
            Response.model_validate_json(result["response"])
            if result["response"]
            else RowError(type=result["error_type"], message=result["error_message"])
        )
        emit(dispatch.after(sample, name, request, outcome))
