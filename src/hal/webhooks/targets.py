"""Where a webhook may go: the URL's host is resolved and every address it has is checked, when
an endpoint is saved and again before each delivery (DNS can change). A delivery then connects
to the address that was checked, so a second lookup cannot point it elsewhere."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from hal.webhooks.rules import UrlNotAllowed, check_url, is_public_address

RESOLVE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Target:
    """A URL cleared for delivery; `address` is the checked address to connect to (None when
    private addresses are allowed and the URL is used as it is)."""

    url: str
    host: str
    address: str | None


async def _addresses(host: str, port: int) -> list[str]:
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, UnicodeError, TimeoutError):
        raise UrlNotAllowed(f"url: the host {host!r} does not resolve") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise UrlNotAllowed(f"url: the host {host!r} does not resolve")
    return addresses


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Check the URL and its host's addresses, or raise UrlNotAllowed (422 url_not_allowed)."""
    _, host, port = check_url(url)
    if allow_private:
        return Target(url=url, host=host, address=None)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = await _addresses(host, port)
    for address in addresses:
        if not is_public_address(address):
            shown = host if address == host else f"{host} ({address})"
            raise UrlNotAllowed(
                f"url: {shown} is a loopback, private, link-local or otherwise internal address"
            )
    return Target(url=url, host=host, address=addresses[0])
