"""Answerer: one Ray Data actor of the pool. It builds every provider once and answers whole blocks.

Rows arrive with the request's fields and the key of their picture, fetched from the object store
once per actor while it is in use (workers need not share the driver's filesystem); each block is
answered with every provider at its own pace on the actor's event loop, so the local model sees
full batches. The cluster-wide limiter sits inside each provider's retries, so every attempt takes
its turn. Answers go back as JSON, errors as their type and message; the driver turns them into
result rows and keeps them in its cache.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from typing import Any

from ..batch import run_batch
from ..client import Client
from ..config import Config
from ..offline import find_layer
from ..provider import Provider, pace_of
from ..types import Request, Response
from ..wrappers.retry import Retrying
from .limiter import GlobalLimited, limits_of

__all__ = ["Answerer"]

#: pictures an actor keeps between blocks (samples of one picture come together)
HELD_PICTURES = 512


def _unlimited(config: Config) -> Config:
    """The config without per-process limits (the cluster's limiter holds them) and without the cache
    (the driver answers hits and keeps the answers)."""
    entries = {
        name: entry.model_copy(update={"max_concurrency": None, "requests_per_minute": None})
        for name, entry in config.all_providers().items()
    }
    return config.model_copy(update={"providers": entries, "cache": config.cache.model_copy(update={"enabled": False})})


def _limit(provider: Provider, limiter: Any, name: str) -> Provider:
    """``provider`` with the cluster's limiter inside its retries (each attempt waits its turn), or
    around it when it has none."""
    retrying = find_layer(provider, Retrying)
    if retrying is None:
        return GlobalLimited(provider, limiter, name)
    retrying.inner = GlobalLimited(retrying.inner, limiter, name)
    return provider


class Answerer:
    def __init__(
        self, config_json: str, names: list[str], limiter: Any, paces: dict[str, int], pictures: dict[str, Any]
    ) -> None:
        config = Config.model_validate_json(config_json)
        limited = set(limits_of(config))
        plain = _unlimited(config)
        self.clients = {name: Client(name, config=plain) for name in names}
        for name in limited & set(names):
            self.clients[name].provider = _limit(self.clients[name].provider, limiter, name)
        self.pictures = pictures
        self.held: OrderedDict[str, bytes] = OrderedDict()  # the pictures of recent blocks
        self.paces = {n: paces.get(n) or pace_of(c.provider) for n, c in self.clients.items()}
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()

    def __call__(self, block: dict[str, Any]) -> dict[str, Any]:
        results = self.loop.run_until_complete(self._answer(block))
        return {
            "i": block["i"],
            "response": [r.model_dump_json() if isinstance(r, Response) else "" for r in results],
            "error_type": ["" if isinstance(r, Response) else type(r).__name__ for r in results],
            "error_message": ["" if isinstance(r, Response) else str(r) for r in results],
            "pid": [self.pid] * len(results),
        }

    def _fetch(self, keys: set[str]) -> None:
        """The pictures of a block, fetched from the object store in one call unless held already."""
        import ray

        missing = sorted(keys - set(self.held))
        for key, data in zip(missing, ray.get([self.pictures[k] for k in missing]), strict=True):
            self.held[key] = data
        for key in keys:
            self.held.move_to_end(key)
        while len(self.held) > max(HELD_PICTURES, len(keys)):
            self.held.popitem(last=False)

    async def _answer(self, block: dict[str, Any]) -> list[Response | Exception]:
        self._fetch(set(block["picture"]))
        rows = list(
            zip(
                block["provider"],
                block["task"],
                block["question"],
                block["choices"],
                block["statement"],
                [self.held[key] for key in block["picture"]],
                strict=True,
            )
        )
        results: list[Response | Exception] = [Exception("not asked")] * len(rows)

        async def one(index: int) -> None:
            name, task, question, choices, statement, image = rows[index]
            client = self.clients[name]
            try:
                request = Request(
                    task=task,
                    image=client.image(bytes(image)),
                    question=question or None,
                    choices=tuple(choices.split("\x1f")) if choices else None,
                    statement=statement or None,
                )
                results[index] = await client.agenerate(request)
            except Exception as exc:  # noqa: BLE001 - every failure goes back as that row's error
                results[index] = exc

        by_provider: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            by_provider.setdefault(row[0], []).append(index)
        await asyncio.gather(
            *(run_batch(one, mine, concurrency=self.paces[name]) for name, mine in by_provider.items())
        )
        return results
