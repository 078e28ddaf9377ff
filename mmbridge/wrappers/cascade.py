"""Cascade: a cheap provider answers when it is sure; the next one is asked when it is not."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ProviderError, UnsupportedTaskError
from ..provider import Provider, aclose_all, concurrency_of, identity_of
from ..types import Request, Response, Task, Usage
from .cascade_rule import stays, sureness

__all__ = ["Cascade", "add_usage"]

log = logging.getLogger("mmbridge.cascade")


def add_usage(a: Usage, b: Usage) -> Usage:
    """Two calls' usage together; a field stays None only when neither call could tell."""

    def plus(x: float | None, y: float | None) -> Any:
        return None if x is None and y is None else (x or 0) + (y or 0)

    return Usage(
        input_tokens=plus(a.input_tokens, b.input_tokens),
        output_tokens=plus(a.output_tokens, b.output_tokens),
        cost_usd=plus(a.cost_usd, b.cost_usd),
    )


class Cascade:
    """Asks ``providers`` in order and keeps the first answer that is confident enough.

    A stage's answer is kept by the rule of :mod:`mmbridge.wrappers.cascade_rule` (parsed, with a
    confidence of at least ``thresholds[task]``); otherwise (no confidence, below the threshold,
    unparsed, or a ``ProviderError``) the next stage is asked. The last stage's answer is kept
    whatever its confidence. A task with no threshold never stops early. The ``Response`` names the
    stage that answered (``provider``), the stages asked before it (``escalated_from``), and adds up
    every call's ``usage``.

    Each stage keeps its own cache and retries (built by ``stack.build_stack``); the cascade's
    own answer is not cached, so changing a threshold never replays an old decision.
    """

    cacheable = False

    def __init__(
        self, providers: Sequence[Provider], thresholds: Mapping[Task | str, float], name: str = "cascade"
    ) -> None:
        if len(providers) < 2:
            raise ValueError("a cascade needs at least two providers")
        self.providers = list(providers)
        self.thresholds = {Task(t): float(v) for t, v in thresholds.items()}
        for task, value in self.thresholds.items():
            if not 0 <= value <= 1:
                raise ValueError(f"threshold for {task.value} must be within 0..1, got {value}")
        self.name = name

    @property
    def capabilities(self) -> frozenset[Task]:
        return frozenset().union(*(p.capabilities for p in self.providers))

    @property
    def concurrency(self) -> int | None:
        """As many calls at once as the first stage wants (a local model's batch)."""
        return concurrency_of(self.providers[0])

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "type": "cascade",
            "providers": [identity_of(p) for p in self.providers],
            "thresholds": {t.value: v for t, v in sorted(self.thresholds.items())},
        }

    async def generate(self, request: Request) -> Response:
        start, service = time.perf_counter(), 0.0
        stages = [p for p in self.providers if request.task in p.capabilities]
        if not stages:
            raise UnsupportedTaskError(self.name, request.task.value, self.capabilities)
        usage, asked = Usage(), []
        for i, provider in enumerate(stages):
            last = i == len(stages) - 1
            try:
                response = await provider.generate(request)
            except ProviderError as exc:
                if last:
                    raise
                log.info("cascade %s: %s failed (%s); asking the next stage", self.name, provider.name, exc)
                asked.append(provider.name)
                continue
            usage = add_usage(usage, response.usage)
            service += response.service_s or 0.0
            if last or stays(sureness(response.confidence, response.parsed), self.thresholds.get(request.task)):
                return response.model_copy(
                    update={
                        "usage": usage,
                        "escalated_from": tuple(asked),
                        "latency_s": time.perf_counter() - start,
                        "service_s": service,  # every stage asked served it
                    }
                )
            asked.append(provider.name)
        raise AssertionError("unreachable: the last stage returns or raises")

    async def aclose(self) -> None:
        await aclose_all(self.providers)

    def __repr__(self) -> str:
        return f"Cascade({self.providers!r}, thresholds={ {t.value: v for t, v in self.thresholds.items()} })"
