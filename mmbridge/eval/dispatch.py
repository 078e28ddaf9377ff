"""The steps every route of an evaluation shares, written once: before a request is answered (the
unsupported check, the cache lookup) and after (the cache write, the row).

The routes (this process, the Batch API, a Ray cluster; ``runner``, ``offline``, ``on_ray``) differ
only in how they answer the requests that ``Dispatch.unsupported`` and ``Dispatch.before`` leave:
each hands every outcome to ``Dispatch.after``. ``before`` and ``after`` may block (hashing a
picture, SQLite), so routes call them off the event loop when the cache is on; the rows they return
are kept by the caller on the event loop, the one writer of samples.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..client import Client
from ..data.sample import Sample
from ..image import Image
from ..offline import find_layer
from ..provider import Provider
from ..types import Request, Response
from ..wrappers.cache import Cached
from .results import make_row, unsupported_row
from .rows import Row, RowError

__all__ = ["Dispatch"]


class Dispatch:
    def __init__(self, clients: Mapping[str, Client]) -> None:
        self.clients = clients
        #: each provider's answer cache (None when off); the routes ask around it, through ``bare``
        self.caches = {name: find_layer(c.provider, Cached) for name, c in clients.items()}
        #: the stack below the cache, the one a route asks (the cache is looked up and written here)
        self.bare: dict[str, Provider] = {
            name: cache.inner if cache is not None and cache is c.provider else c.provider
            for name, c in clients.items()
            for cache in [self.caches[name]]
        }

    def cached(self, name: str) -> bool:
        """Whether ``before`` and ``after`` touch a cache for ``name`` (and so may block)."""
        return self.caches[name] is not None

    def unsupported(self, sample: Sample, name: str) -> Row | None:
        """The row for a task the provider does not do (written without asking it), or None."""
        return unsupported_row(sample, name, self.clients[name])

    def before(self, sample: Sample, name: str, image: Image) -> Row | Request:
        """The row of an answer already in the cache, or the request to answer (after ``unsupported``)."""
        request = sample.to_request(image)
        cache = self.caches[name]
        hit = cache.find(request) if cache is not None else None
        return make_row(sample, name, hit, None) if hit is not None else request

    def after(
        self,
        sample: Sample,
        name: str,
        request: Request | Callable[[], Request] | None,
        outcome: Response | Exception | RowError,
    ) -> Row:
        """The row for an answer (kept in the cache first, under ``request``: given, or made when it is
        needed) or a failure."""
        if isinstance(outcome, Response):
            cache = self.caches[name]
            if cache is not None and request is not None:
                cache.put(request if isinstance(request, Request) else request(), outcome)
            return make_row(sample, name, outcome, None)
        return make_row(sample, name, None, outcome)
