"""Cut off clients that send a request's headers too slowly (uvicorn itself waits for them forever).

A client that opens a connection and drips one byte of headers every few seconds never reaches
the app, so no app-level timeout can see it; hundreds of them exhaust the server's file
descriptors and even ``/health`` stops answering. This wraps uvicorn's HTTP protocol class: from
the moment a connection opens, or a new request starts arriving on a kept-alive one, its headers
must be complete within ``read_timeout_s``, else the client gets a 408 and the connection closes.
(The body has its own limit in the app, which sees it arrive.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..wire import error_body

__all__ = ["with_header_timeout"]


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps(error_body(f"the request headers did not arrive within {seconds:g} s", code="timeout")).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def with_header_timeout(base: type[asyncio.Protocol], read_timeout_s: float) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's ``base`` protocol (httptools or h11) that enforces the header deadline."""

    class HeaderTimeout(base):  # type: ignore[misc, valid-type]
        _header_timer: asyncio.TimerHandle | None = None
        _waiting_on: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            stale = self._header_timer is None or self._waiting_on is not getattr(self, "cycle", None)
            if stale and self._between_requests():
                self._arm()  # the first bytes of another request on a kept-alive connection
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            cycle = getattr(self, "cycle", None)
            return cycle is None or cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            # the cycle uvicorn will replace once this request's headers are parsed
            self._waiting_on = getattr(self, "cycle", None)
            self._header_timer = asyncio.get_running_loop().call_later(read_timeout_s, self._expire, self._waiting_on)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self, waiting_on: Any) -> None:
            self._header_timer = None
            if getattr(self, "cycle", None) is not waiting_on:
                return  # the headers arrived in time: a new request cycle began
            transport = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.write(_timeout_response(read_timeout_s))
                transport.close()

    HeaderTimeout.__name__ = HeaderTimeout.__qualname__ = f"HeaderTimeout{base.__name__}"
    return HeaderTimeout
