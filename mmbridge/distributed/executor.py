"""The Ray Data pipeline: work rows -> map_batches over a pool of Answerer actors -> result rows, streamed back.

Each picture goes into Ray's object store once (``Pictures``, by content hash), however many rows
ask about it, and work rows name it by that hash, so workers need not share the driver's
filesystem. An actor that dies mid-block is restarted and its block asked again, whole: no row is
lost, and since a block's rows come back only when the whole block is done, none is duplicated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import xxhash

from ..config import Config
from .cluster import connect
from .limiter import LimiterActor, limits_of
from .options import RayOptions
from .worker import Answerer

__all__ = ["Pictures", "answer_on_ray", "work_row"]


class Pictures:
    """Pictures put into the object store once each, by the hash of their bytes (connects to Ray)."""

    def __init__(self, options: RayOptions) -> None:
        self.ray = connect(options)
        self.refs: dict[str, Any] = {}

    def add(self, data: bytes) -> str:
        """The key a work row names the picture by; its bytes are put in the store the first time."""
        key = xxhash.xxh3_128_hexdigest(data)  # as Image.source_hash: a photo in tens of microseconds
        if key not in self.refs:
            self.refs[key] = self.ray.put(data)
        return key


def work_row(index: int, provider: str, request: Any, picture: str) -> dict[str, Any]:
    """One row for the pipeline: plain columns (Arrow stores them), the picture by its key in ``Pictures``."""
    return {
        "i": index,
        "provider": provider,
        "task": request.task.value,
        "question": request.question or "",
        "choices": "\x1f".join(request.choices) if request.choices else "",
        "statement": request.statement or "",
        "picture": picture,
    }


def answer_on_ray(
    config: Config,
    names: list[str],
    rows: list[dict[str, Any]],
    pictures: Pictures,
    options: RayOptions,
    paces: dict[str, int],
) -> Iterator[dict[str, Any]]:
    """Result rows (``i``, ``response`` JSON or "", ``error_type``, ``error_message``, ``pid``), as they finish."""
    if not rows:
        return
    ray = connect(options)
    limiter = ray.remote(LimiterActor).options(num_cpus=0).remote(limits_of(config))
    try:
        blocks = max(options.actors, math.ceil(len(rows) / options.block_rows))  # every actor gets work
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        answered = dataset.map_batches(
            Answerer,
            fn_constructor_kwargs={
                "config_json": config.model_dump_json(),
                "names": names,
                "limiter": limiter,
                "paces": paces,
                "pictures": pictures.refs,
            },
            batch_size=min(options.block_rows, math.ceil(len(rows) / blocks)),
            batch_format="numpy",
            # Ray Data's actor pool restarts an actor that dies and asks its block again
            compute=ray.data.ActorPoolStrategy(size=options.actors),
            num_cpus=options.actor_cpus,
            num_gpus=options.actor_gpus or None,
        )
        for row in answered.iter_rows():
            yield {
                "i": int(row["i"]),
                "response": str(row["response"]),
                "error_type": str(row["error_type"]),
                "error_message": str(row["error_message"]),
                "pid": int(row["pid"]),
            }
    finally:
        ray.kill(limiter)
