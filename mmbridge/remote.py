"""Fetch an image over http(s) safely: public addresses only, a size cap, a timeout, no redirects."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
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
    resolve: Callable[[str, int], str] = resolve_public,
) -> bytes:
    """GET ``url`` and return its body, connecting only to the address ``resolve`` vetted."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname}{parts.path}"  # no query string, no credentials
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageError(f"cannot fetch image {shown}: only http(s) URLs with a host are supported")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(parts.hostname, port)
    # Connect to the vetted address itself, so a second DNS answer cannot point elsewhere.
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = _PinnedHTTPSConnection(parts.hostname, address, port, timeout=timeout_s)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout_s)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request("GET", target, headers={"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"})
        response = conn.getresponse()
        if response.status != 200:
            raise ImageError(f"cannot fetch image {shown}: HTTP {response.status} (redirects are not followed)")
        declared = response.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise ImageError(f"cannot fetch image {shown}: {declared} bytes is over the {max_bytes:,}-byte limit")
        body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise ImageError(f"cannot fetch image {shown}: larger than the {max_bytes:,}-byte limit")
        return body
    except TimeoutError:
        raise ImageError(f"cannot fetch image {shown}: no answer within {timeout_s:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ImageError(f"cannot fetch image {shown}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with the certificate still checked against the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
