"""Cached: answers kept on disk (diskcache), keyed by what can change them and nothing else.

The key is a sha256 of the canonical request: the image's pixel hash, task, question, choices,
statement, and the provider's identity (type, model, a hash of the endpoint, generation
settings, prompt template version). Never the API key, and not timeouts, retries or concurrency.
Only answers are stored, never errors. Identical requests in flight at the same time are sent
once. diskcache keeps its index in SQLite, so several processes may share one directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from ..errors import CacheError
from ..image import Image
from ..provider import Provider, WrapperProvider, identity_of
from ..types import Request, Response

__all__ = ["CACHE_FORMAT", "Cached", "CacheMode", "cache_mode", "guarded", "open_store", "request_key"]

#: bump when the stored value or the key changes meaning
CACHE_FORMAT = 1
CacheMode = Literal["use", "refresh", "off"]
_MODE: ContextVar[CacheMode] = ContextVar("mmbridge_cache_mode", default="use")

#: file aliases a Cached keeps in memory (about 150 bytes each)
MEMORY_ALIASES = 100_000


@contextlib.contextmanager
def cache_mode(mode: CacheMode) -> Iterator[None]:
    """Within the block: ``use`` the cache, ``refresh`` it (ask again, store), or leave it ``off``."""
    token = _MODE.set(mode)
    try:
        yield
    finally:
        _MODE.reset(token)


@contextlib.contextmanager
def guarded(directory: Path, doing: str) -> Iterator[None]:
    """Turn the store's SQLite and file errors into one CacheError line that says what to do."""
    import sqlite3

    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise CacheError(
            f"cannot {doing} the answer cache at {directory} ({type(exc).__name__}: {exc}); "
            "delete that folder, or point [cache] dir in mmbridge.toml somewhere writable"
        ) from None


def open_store(directory: Path) -> Any:
    """The diskcache store in ``directory``, created if missing.

    A file in its place, a database that is not one, or one that cannot be written is a CacheError
    here (diskcache reads and writes its settings on open); damage deeper in the file shows, as a
    CacheError too, when an entry there is read or written.
    """
    import diskcache

    if directory.exists() and not directory.is_dir():
        raise CacheError(f"the answer cache {directory} is a file, not a folder; move it, or set [cache] dir")
    with guarded(directory, "open"):
        return diskcache.Cache(str(directory))


def close_store(store: Any, directory: Path) -> None:
    """Close ``store`` with its answers in the database file itself: diskcache closes only the
    calling thread's connection, and SQLite folds its write-ahead log into the file when the last
    one closes, so with reads and writes made on other threads the log would wait for the collector.
    A checkpoint from a connection of our own does it now (best effort: a read-only or damaged
    cache stays as it is, and says so on its next use)."""
    store.close()
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(directory / "cache.db", timeout=1)) as db,
    ):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def request_key(identity: dict[str, Any], request: Request, image_hash: str) -> str:
    payload = {
        "format": CACHE_FORMAT,
        "provider": identity,
        "task": request.task.value,
        "image": image_hash,
        "question": request.question,
        "choices": list(request.choices) if request.choices else None,
        "statement": request.statement,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Cached(WrapperProvider):
    """Answers from ``directory`` when it has them; asks ``inner`` and stores the answer otherwise.

    A provider with ``cacheable = False`` (the ``function`` provider, whose code may change under
    the same name) is passed through untouched.
    """

    def __init__(self, inner: Provider, directory: str | os.PathLike[str], *, ttl_s: float | None = None) -> None:
        super().__init__(inner)
        self.directory = Path(directory)
        self.ttl_s = ttl_s
        self.store = open_store(self.directory)
        self.hits = 0
        self.misses = 0
        self._identity = identity_of(inner)
        #: file byte hash -> pixel hash for the files this process met (the disk keeps them all)
        self._aliases: dict[str, str] = {}
        self._in_flight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future[Response]]] = (
            weakref.WeakKeyDictionary()
        )

    def _get(self, key: str) -> Any:
        with guarded(self.directory, "read"):
            return self.store.get(key)

    def _set(self, key: str, value: str, expire: float | None = None) -> None:
        with guarded(self.directory, "write to"):
            self.store.set(key, value, expire=expire)

    def image_hash(self, image: Image) -> str:
        """The pixel hash, found through the file's byte hash when this cache has seen the file (no decode);
        blocking: it may read the disk, or decode and hash the picture."""
        known = self._cheap_hash(image)
        if known is not None:
            return known
        source = None if image.is_decoded else image.source_hash  # before the hash decodes it
        if source is None:
            return image.content_hash
        alias = f"source:{source}"
        stored = self._get(alias)
        known = str(stored) if stored is not None else image.content_hash
        if stored is None:
            self._set(alias, known)
        self._remember(source, known)
        return known

    def _cheap_hash(self, image: Image) -> str | None:
        """The pixel hash when it costs microseconds: hashed before, or a file this process has met
        (an XXH3 of its bytes and a dict lookup); None otherwise."""
        if image.known_hash is not None:
            return image.known_hash
        source = image.source_hash
        return None if image.is_decoded or source is None else self._aliases.get(source)

    def _remember(self, source: str, known: str) -> None:
        if len(self._aliases) >= MEMORY_ALIASES:  # a bound, not an LRU: a sweep of new files just starts over
            self._aliases.clear()
        self._aliases[source] = known

    def key(self, request: Request) -> str:
        return request_key(self._identity, request, self.image_hash(request.image))

    def _lookup(self, request: Request, read: bool) -> tuple[str, Any]:
        key = self.key(request)
        return key, self._get(key) if read else None

    def find(self, request: Request) -> Response | None:
        """The stored answer (marked cached), or None; blocking: it may hash the picture."""
        if _MODE.get() != "use" or not getattr(self.inner, "cacheable", True):
            return None
        _, stored = self._lookup(request, True)
        return None if stored is None else self._hit(stored, 0.0)

    def _hit(self, stored: Any, latency_s: float) -> Response:
        self.hits += 1
        hit = {"cached": True, "latency_s": latency_s, "service_s": latency_s}  # the lookup was the service
        return Response.model_validate_json(stored).model_copy(update=hit)

    def put(self, request: Request, response: Response) -> None:
        """Keep an answer that was got around this wrapper (a batch's); blocking."""
        if _MODE.get() != "off" and getattr(self.inner, "cacheable", True):
            self.misses += 1
            self._set(self.key(request), response.model_dump_json(), expire=self.ttl_s)

    async def generate(self, request: Request) -> Response:
        mode = _MODE.get()
        if mode == "off" or not getattr(self.inner, "cacheable", True):
            return await self.inner.generate(request)
        start = time.perf_counter()
        # a picture hashed before, or a file this process has met, is looked up here (one indexed
        # SQLite read, microseconds: a thread hop costs more than the work); any other goes to a
        # thread, where its alias is read from disk or its pixels decoded and hashed
        cheap = self._cheap_hash(request.image)
        if cheap is not None:
            key = request_key(self._identity, request, cheap)
            stored = self._get(key) if mode == "use" else None
        else:
            key, stored = await asyncio.to_thread(self._lookup, request, mode == "use")
        if mode == "use" and stored is not None:
            return self._hit(stored, time.perf_counter() - start)
        in_flight = self._in_flight.setdefault(asyncio.get_running_loop(), {})
        leader = in_flight.get(key)
        if leader is not None:
            return await self._follow(leader, request, start)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        in_flight[key] = future
        self.misses += 1
        try:
            response = await self.inner.generate(request)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # mark retrieved: followers re-raise it, nobody else must
            raise
        else:
            future.set_result(response)  # followers need not wait for the write
            await asyncio.to_thread(self._set, key, response.model_dump_json(), self.ttl_s)
            return response
        finally:
            del in_flight[key]

    async def _follow(self, leader: asyncio.Future[Response], request: Request, start: float) -> Response:
        try:
            response = await asyncio.shield(leader)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if leader.cancelled() and not (task and task.cancelling()):
                return await self.generate(request)  # the leader was cancelled, not us: ask ourselves
            raise
        took = time.perf_counter() - start
        return response.model_copy(update={"cached": True, "latency_s": took, "service_s": took})

    async def aclose(self) -> None:
        await asyncio.to_thread(close_store, self.store, self.directory)
        await super().aclose()
