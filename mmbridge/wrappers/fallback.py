"""Fallback: try providers in order; the next one answers when one fails or lacks the task."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import ProviderError, UnsupportedTaskError
from ..provider import Provider, aclose_all, identity_of
from ..types import Request, Response, Task

__all__ = ["Fallback"]

log = logging.getLogger("mmbridge.fallback")


class Fallback:
    """Asks ``providers[0]``; on a :class:`ProviderError` asks the next, and so on.

    Only provider failures move on: a bad image or a bad request fails the same way everywhere,
    so it is raised at once. When all fail, the last error is raised (its type is kept).
    ``Response.provider`` says which one answered.
    """

    def __init__(self, providers: Sequence[Provider], name: str = "fallback") -> None:
        if not providers:
            raise ValueError("Fallback needs at least one provider")
        self.providers = list(providers)
        self.name = name

    @property
    def capabilities(self) -> frozenset[Task]:
        return frozenset().union(*(p.capabilities for p in self.providers))

    @property
    def cacheable(self) -> bool:
        return all(getattr(p, "cacheable", True) for p in self.providers)

    @property
    def identity(self) -> dict[str, Any]:
        return {"type": "fallback", "providers": [identity_of(p) for p in self.providers]}

    async def generate(self, request: Request) -> Response:
        last: ProviderError | None = None
        for provider in self.providers:
            if request.task not in provider.capabilities:
                continue
            try:
                return await provider.generate(request)
            except ProviderError as exc:
                log.info(
                    "fallback: %s failed (%s: %s); trying the next provider", provider.name, type(exc).__name__, exc
                )
                last = exc
        if last is None:
            raise UnsupportedTaskError(self.name, request.task.value, self.capabilities)
        raise last

    async def aclose(self) -> None:
        await aclose_all(self.providers)

    def __repr__(self) -> str:
        return f"Fallback({self.providers!r})"
