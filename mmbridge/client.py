"""Client: the user-facing facade over one provider stack, with sync and async methods."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from .config import Config, ProviderConfig, load_config
from .errors import ImageError
from .image import Image
from .portal import Portal
from .provider import Provider, aclose_all
from .stack import build_stack
from .types import Request, Response
from .wrappers.cache import CacheMode, cache_mode

__all__ = ["Client"]

T = TypeVar("T")
RequestLike = Request | Mapping[str, Any]


class Client:
    """Ask any provider about images.

    ``Client("fake")``, ``Client("openai", model="gpt-4o")``, ``Client(my_provider)``, or
    ``Client.from_config()`` for the provider ``mmbridge.toml`` names. Every method has an async
    twin (``aask`` for ``ask``...). Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self, provider: str | Provider | None = None, /, *, config: Config | None = None, **options: Any
    ) -> None:
        self.config = config if config is not None else Config()
        if provider is None or isinstance(provider, str):
            entry = ProviderConfig(type=provider or self.config.default, **options) if options else None
            self.provider: Provider = build_stack(self.config, provider, entry)
        else:
            if options:
                raise TypeError("options are for provider names; a Provider instance is already configured")
            self.provider = provider
        self._portal: Portal | None = None
        self._portal_lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, provider: str | None = None) -> Client:
        """A client for ``provider`` (default: the config's ``default``) from ``path`` or the usual places."""
        return cls(provider, config=load_config(path))

    # -- inputs ---------------------------------------------------------------------------------

    def image(self, source: Any) -> Image:
        """Normalize ``source`` with this client's image settings (decoded lazily)."""
        if isinstance(source, Image):
            return source
        images = self.config.images
        return Image(
            source,
            lazy=True,
            max_pixels=images.max_pixels,
            allow_remote=self.config.allow_remote_images,
            remote_max_bytes=images.remote_max_bytes,
            remote_timeout_s=images.remote_timeout_s,
        )

    def image_from_url(self, url: str) -> Image:
        """An image a network client named by URL: a ``data:`` URL, or http(s) when remote images are on.

        Never a path or any other scheme: a server must not open its own files for a client. Every
        refused URL gets the same message, so a client cannot probe which paths exist.
        """
        remote = self.config.allow_remote_images
        if not (url.startswith("data:") or (remote and url.startswith(("http://", "https://")))):
            also = " or an http(s) URL" if remote else " (this server does not fetch http(s) URLs)"
            raise ImageError(f"image_url must be a base64 data: URL (data:image/png;base64,...){also}")
        return self.image(url)

    def request(self, item: RequestLike) -> Request:
        """A Request from a Request or a mapping such as ``{"task": "vqa", "image": ..., "question": ...}``."""
        if isinstance(item, Request):
            return item
        data = dict(item)
        data["image"] = self.image(data.get("image"))
        return Request(**data)

    # -- async API ------------------------------------------------------------------------------

    async def agenerate(self, request: RequestLike, *, cache: bool = True, refresh: bool = False) -> Response:
        """Answer one request. ``cache=False`` bypasses the cache; ``refresh=True`` asks again and stores."""
        mode: CacheMode = "off" if not cache else "refresh" if refresh else "use"
        with cache_mode(mode):
            return await self.provider.generate(self.request(request))

    async def aask(self, image: Any, question: str, choices: Sequence[str] | None = None, **call: bool) -> Response:
        """Visual question answering; ``choices`` restricts the answer to a closed set."""
        return await self.agenerate(Request.vqa(self.image(image), question, choices), **call)

    async def acaption(self, image: Any, **call: bool) -> Response:
        """One sentence describing the image."""
        return await self.agenerate(Request.caption(self.image(image)), **call)

    async def averify(self, image: Any, statement: str, **call: bool) -> Response:
        """Whether ``statement`` is true of the image: ``Response.label``."""
        return await self.agenerate(Request.verify(self.image(image), statement), **call)

    async def abatch(
        self,
        requests: Iterable[RequestLike],
        *,
        concurrency: int = 8,
        progress: bool | None = None,
        cache: bool = True,
        refresh: bool = False,
    ) -> list[Response | Exception]:
        """Answer many requests, ``concurrency`` at a time; results are in input order.

        A failed item is returned as its exception, never raised mid-batch. ``progress`` shows a
        progress bar (default: when stderr is a terminal).
        """
        from .batch import run_batch

        async def one(item: RequestLike) -> Response:
            return await self.agenerate(item, cache=cache, refresh=refresh)

        return await run_batch(one, list(requests), concurrency=concurrency, progress=progress)

    async def aclose(self) -> None:
        await aclose_all([self.provider])

    # -- sync API -------------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._portal_lock:
            if self._portal is None:
                self._portal = Portal("mmbridge-client")
        return self._portal.call(coro)

    def generate(self, request: RequestLike, **call: bool) -> Response:
        """Sync twin of :meth:`agenerate` (takes ``cache=`` and ``refresh=`` too, like every method)."""
        return self._call(self.agenerate(request, **call))

    def ask(self, image: Any, question: str, choices: Sequence[str] | None = None, **call: bool) -> Response:
        """Visual question answering; ``choices`` restricts the answer to a closed set."""
        return self._call(self.aask(image, question, choices, **call))

    def caption(self, image: Any, **call: bool) -> Response:
        """One sentence describing the image."""
        return self._call(self.acaption(image, **call))

    def verify(self, image: Any, statement: str, **call: bool) -> Response:
        """Whether ``statement`` is true of the image: ``Response.label``."""
        return self._call(self.averify(image, statement, **call))

    def batch(self, requests: Iterable[RequestLike], **options: Any) -> list[Response | Exception]:
        """Sync twin of :meth:`abatch`."""
        return self._call(self.abatch(requests, **options))

    def close(self) -> None:
        """Release the provider's resources and the background loop of the sync API."""
        with self._portal_lock:
            portal, self._portal = self._portal, None
        if portal is not None:
            try:
                portal.call(self.aclose())
            finally:
                portal.close()
        else:
            asyncio.run(self.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Client({self.provider!r})"
