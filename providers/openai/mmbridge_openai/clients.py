"""Where the SDK runs: on the caller's event loop for small requests, on a loop of its own for large ones.

The SDK builds, sends and parses each request in Python: about 1 ms for a small body and 3 ms for
a photo's 200 KB data URL, measured here. Work over a millisecond must not hold the caller's
loop while anything else runs on it, so a large body goes to a Portal (an event loop on the
provider's own thread) unless the call is the loop's only task. A small one stays on the caller's
loop: handing it over costs more than it saves (client.abatch at 50 calls at once fell from 91% to
72% of the raw SDK's throughput when every call was handed over); so does a lone one, where the
hand-over is all cost (about 0.3 ms a call, sequential calls with a 256x256 picture). Counting this
provider's calls in flight instead missed the first call of every burst (its siblings were tasks
already, not calls yet): 3-4 ms steps on the loop in benchmarks/loop_blocking.py.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import openai

from mmbridge.portal import Portal

__all__ = ["PORTAL_BYTES", "SDKClients"]

T = TypeVar("T")

#: a request whose image data URL is longer than this is sent from the provider's own loop
PORTAL_BYTES = 64 * 1024


class SDKClients:
    """One SDK client per caller event loop (its connections are bound to the loop), and the portal's."""

    def __init__(self, make: Callable[[], openai.AsyncOpenAI], name: str) -> None:
        self.make, self.name = make, name
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        # made now, not on the first request: building one, and first touching .chat, import the
        # HTTP stack and the chat types (~0.3 s), which would hold the first caller's event loop;
        # the first loop to ask takes it
        self._spare: openai.AsyncOpenAI | None = make()
        _ = self._spare.chat.completions
        self._portal: Portal | None = None
        self._portal_client: openai.AsyncOpenAI | None = None

    def here(self) -> openai.AsyncOpenAI:
        """The client of the running loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._by_loop.get(loop)
            if client is None:
                client, self._spare = self._spare or self.make(), None
                self._by_loop[loop] = client
        return client

    async def chat(self, payload: dict[str, Any], read: Callable[[Any], T]) -> T:
        """``read(chat.completions.create(**payload))``, both on the portal when the body is large and
        other tasks share the loop."""
        if _image_bytes(payload) <= PORTAL_BYTES or len(asyncio.all_tasks()) <= 1:
            return read(await self.here().chat.completions.create(**payload))
        portal, client = self._opened() or await asyncio.to_thread(self._open)  # a client loads its TLS setup: ms

        async def ask() -> T:
            return read(await client.chat.completions.create(**payload))

        return await portal.run(ask())

    def _opened(self) -> tuple[Portal, openai.AsyncOpenAI] | None:
        with self._lock:
            return (self._portal, self._portal_client) if self._portal and self._portal_client else None

    def _open(self) -> tuple[Portal, openai.AsyncOpenAI]:
        with self._lock:
            if self._portal is None or self._portal_client is None:
                self._portal, self._portal_client = Portal(f"mmbridge-{self.name}"), self.make()
            return self._portal, self._portal_client

    async def aclose(self) -> None:
        with self._lock:
            clients = list(self._by_loop.items())
            self._by_loop.clear()
            portal, client, self._portal, self._portal_client = self._portal, self._portal_client, None, None
        current = asyncio.get_running_loop()
        for loop, each in clients:
            if loop is current:  # a client of another loop cannot be closed from here; its loop owns it
                await each.close()
        if portal is not None and client is not None:
            await portal.run(client.close())
            await asyncio.to_thread(portal.close)


def _image_bytes(payload: dict[str, Any]) -> int:
    parts = payload["messages"][0]["content"]
    return sum(len(p["image_url"]["url"]) for p in parts if p.get("type") == "image_url")
