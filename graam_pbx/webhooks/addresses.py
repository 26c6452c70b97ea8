"""Where webhooks may go: public addresses only, unless the operator allows a network.

A webhook is a request the control plane makes to a URL its tenant chose: without a rule, a
tenant could make it reach the control plane's own host or private network (server-side
request forgery). So an endpoint's URL is ``http`` or ``https`` without credentials, and the
addresses its host resolves to must all be global unicast (not loopback, private, link-local,
multicast, reserved or unspecified), unless they lie in a network of
``GRAAM_WEBHOOKS_ALLOWED_NETWORKS``. The URL is checked when it is saved (422) and its host
resolved and checked again before every delivery; the request then goes to the address that
was checked (the host name kept for ``Host`` and TLS), so a name that resolves elsewhere
between the check and the connection cannot bypass it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL = 2000


class Refused(ValueError):
    """The URL or its addresses may not be delivered to; the message says why.

    ``reason`` is the message's English text with ``{name}`` placeholders and ``values``
    fills them, so that a page can say it in its reader's language."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason.format(**values) if values else reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True)
class Target:
    """A URL split into what a delivery needs."""

    scheme: str
    host: str
    port: int
    path: str  # with its query


def parse(url: str) -> Target:
    """The URL's parts; ``Refused`` when it is not one a webhook may use."""
    if len(url) > MAX_URL:
        raise Refused("at most {limit} characters", limit=MAX_URL)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not hold credentials (the signature authenticates)")
    if not parts.hostname:
        raise Refused("must name a host")
    if parts.fragment:
        raise Refused("must not have a fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("has an invalid port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname.lower(), port, path)


def permitted(address: Address, allowed: Sequence[Network]) -> bool:
    """A global unicast address, or one of an allowed network."""
    if any(address in network for network in allowed if network.version == address.version):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return permitted(address.ipv4_mapped, allowed)
    return address.is_global and not address.is_multicast


async def resolve(target: Target, allowed: Sequence[Network]) -> Address:
    """The address to deliver to: the host's first, once every address it resolves to is
    permitted; ``Refused`` otherwise (or when it resolves to none)."""
    try:
        literal: Address | None = ipaddress.ip_address(target.host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM
            )
        except OSError as err:
            raise Refused(
                "host {host} does not resolve: {error}", host=target.host, error=str(err)
            ) from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise Refused("host {host} does not resolve", host=target.host)
    for address in addresses:
        if not permitted(address, allowed):
            raise Refused(
                "{host} is {address}: not a public address "
                "(the operator may allow its network: GRAAM_WEBHOOKS_ALLOWED_NETWORKS)",
                host=target.host,
                address=str(address),
            )
    return addresses[0]
