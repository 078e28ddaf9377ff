"""The Provider protocol, a base class that does the bookkeeping, and the base of wrappers."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from .errors import UnsupportedTaskError
from .types import Request, Response, Task

__all__ = ["BaseProvider", "Provider", "WrapperProvider", "concurrency_of", "identity_of"]


@runtime_checkable
class Provider(Protocol):
    """Anything that answers :class:`Request` s. Only ``generate`` is async; sync calls wrap it.

    Optional members a provider may add: ``identity`` (a JSON-able dict of everything that can
    change its output: type, model, endpoint, generation settings; never secrets), used by the
    cache key; ``cacheable`` (False keeps its answers out of the cache); ``concurrency`` (how many
    calls at once keep it busy: the local model says its batch size); and ``async aclose()``,
    called when the owning client closes.
    """

    name: str
    capabilities: frozenset[Task]

    async def generate(self, request: Request) -> Response: ...


def identity_of(provider: Provider) -> dict[str, Any]:
    """The provider's identity for cache keys; a provider without one is known by its name."""
    identity = getattr(provider, "identity", None)
    return dict(identity) if identity is not None else {"name": provider.name}


#: calls at once for a provider that sets no concurrency of its own (an evaluation, a Ray actor)
DEFAULT_CONCURRENCY = 8


def pace_of(provider: Provider) -> int:
    """Calls at once an evaluation makes to ``provider``: its own concurrency, else the default."""
    return concurrency_of(provider) or DEFAULT_CONCURRENCY


def concurrency_of(provider: Provider) -> int | None:
    """How many calls at once a provider stack wants: the first limit a layer sets (``Limited``'s
    ``max_concurrency``), else the innermost provider's own ``concurrency``; None when none says."""
    layer: object | None = provider
    while layer is not None:
        for name in ("max_concurrency", "concurrency"):
            value = getattr(layer, name, None)
            if isinstance(value, int) and value > 0:
                return value
        layer = getattr(layer, "inner", None)
    return None


class BaseProvider:
    """Convenience base: checks the task, times the call, fills ``provider`` and ``latency_s``.

    Subclasses set ``capabilities`` and implement ``_generate``.
    """

    capabilities: frozenset[Task] = frozenset(Task)
    model: str | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def identity(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "model": self.model}

    async def generate(self, request: Request) -> Response:
        if request.task not in self.capabilities:
            raise UnsupportedTaskError(self.name, request.task.value, self.capabilities)
        start = time.perf_counter()
        response = await self._generate(request)
        took = time.perf_counter() - start
        # a batched provider stamps its batch's time; anything else served this call the whole time
        return response.model_copy(update={"latency_s": took, "service_s": response.service_s or took})

    async def _generate(self, request: Request) -> Response:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r})"


class WrapperProvider:
    """A provider that adds behaviour around another one (cache, retry, limits, fallback)."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> frozenset[Task]:
        return self.inner.capabilities

    @property
    def identity(self) -> dict[str, Any]:
        return identity_of(self.inner)

    @property
    def cacheable(self) -> bool:
        return getattr(self.inner, "cacheable", True)

    async def generate(self, request: Request) -> Response:
        return await self.inner.generate(request)

    async def aclose(self) -> None:
        await aclose_all([self.inner])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


async def aclose_all(providers: Iterable[Provider]) -> None:
    for provider in providers:
        close = getattr(provider, "aclose", None)
        if close is not None:
            await close()
