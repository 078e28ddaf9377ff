"""The evaluation's Ray path (``--executor ray``): the driver answers cache hits, the cluster the rest.

Rows stream back from the actors as their blocks finish and are appended to samples.jsonl at
once, so a killed run resumes exactly as a local one does; answers go into the driver's cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from ..client import Client
from ..config import Config
from ..data.sample import Sample
from ..distributed.executor import answer_on_ray, work_row
from ..distributed.options import RayOptions
from ..offline import find_layer
from ..types import Response
from ..wrappers.cache import Cached
from .results import make_row, unsupported_row
from .rows import Row, RowError

__all__ = ["answer_with_ray"]


async def answer_with_ray(
    clients: Mapping[str, Client],
    todo: list[tuple[Sample, str]],
    *,
    config: Config,
    options: RayOptions,
    paces: Mapping[str, int],
    keep: Callable[[Row], None],
) -> None:
    await asyncio.to_thread(_run, clients, todo, config, options, dict(paces), keep)


def _run(
    clients: Mapping[str, Client],
    todo: list[tuple[Sample, str]],
    config: Config,
    options: RayOptions,
    paces: dict[str, int],
    keep: Callable[[Row], None],
) -> None:
    caches: dict[str, Any] = {name: find_layer(client.provider, Cached) for name, client in clients.items()}
    pending: list[tuple[Sample, str, Any]] = []  # with its request: the cache key is known from it
    work: list[dict[str, Any]] = []
    for sample, name in todo:
        client = clients[name]
        if (row := unsupported_row(sample, name, client)) is not None:
            keep(row)
            continue
        request = sample.to_request(client.image(sample.image))
        hit = caches[name].find(request) if caches[name] is not None else None
        if hit is not None:
            keep(make_row(sample, name, hit, None))
            continue
        work.append(work_row(len(pending), name, request, sample.image.read_bytes()))
        pending.append((sample, name, request))
    for result in answer_on_ray(config, list(clients), work, options, paces):
        sample, name, request = pending[result["i"]]
        if result["response"]:
            response = Response.model_validate_json(result["response"])
            if caches[name] is not None:
                caches[name].put(request, response)
            keep(make_row(sample, name, response, None))
        else:
            keep(make_row(sample, name, None, RowError(type=result["error_type"], message=result["error_message"])))
