"""Fetch an image over http(s) safely: public addresses only, a size cap, a timeout, no redirects."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from .errors import ImageError

__all__ = ["fetch_image_bytes", "resolve_public"]


def resolve_public(host: str, port: int) -> str:
    """Resolve ``host`` and return one address, refusing any that is not publicly routable.

    Every address the name resolves to must be public: a name that also points at a private,
    loopback or link-local address (the cloud metadata service, say) is refused outright.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ImageError(f"cannot fetch image from {host}: the name does not resolve ({exc.strerror})") from None
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            raise ImageError(f"cannot fetch image from {host}: {address} is not a public address")
    return addresses[0]


def fetch_image_bytes(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    resolve: Callable[[str, int], str] | None = None,
) -> bytes:
    """GET ``url`` and return its body, connecting only to the address ``resolve`` vetted.

    ``timeout_s`` bounds the whole download, from connecting to the last byte: a server that
    trickles a byte a second cannot hold the caller past it (a socket timeout alone restarts
    with every byte).
    """
    deadline = time.monotonic() + timeout_s
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname}{parts.path}"  # no query string, no credentials
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageError(f"cannot fetch image {shown}: only http(s) URLs with a host are supported")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = (resolve or resolve_public)(parts.hostname, port)
    # Connect to the vetted address itself, so a second DNS answer cannot point elsewhere.
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = _PinnedHTTPSConnection(parts.hostname, address, port, timeout=timeout_s)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout_s)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    watchdog: threading.Timer | None = None
    try:
        # connecting and sending are bounded by the socket timeout; the watchdog bounds the rest
        conn.request("GET", target, headers={"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"})
        watchdog = threading.Timer(max(deadline - time.monotonic(), 0), _cut, (conn.sock,))
        watchdog.daemon = True
        watchdog.start()
        response = conn.getresponse()
        if response.status != 200:
            raise ImageError(f"cannot fetch image {shown}: HTTP {response.status} (redirects are not followed)")
        declared = response.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise ImageError(f"cannot fetch image {shown}: {declared} bytes is over the {max_bytes:,}-byte limit")
        body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise ImageError(f"cannot fetch image {shown}: larger than the {max_bytes:,}-byte limit")
        if time.monotonic() >= deadline:  # the watchdog cut the body short
            raise TimeoutError
        return body
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
            raise ImageError(f"cannot fetch image {shown}: not downloaded within {timeout_s:g} s") from None
        raise ImageError(f"cannot fetch image {shown}: {type(exc).__name__}: {exc}") from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
        conn.close()


def _cut(sock: socket.socket | None) -> None:
    """End a download at its deadline: a blocked read, and every later one, returns at once."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with the certificate still checked against the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
