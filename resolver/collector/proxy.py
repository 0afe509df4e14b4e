"""Behind a TLS reverse proxy: the client's address and scheme, believed only from trusted peers.

A proxy that terminates TLS talks plain HTTP to the collector, so without help every request
looks insecure (cookies would lose ``Secure``) and comes from the proxy's address (one rate
limit bucket for the whole province). ``X-Forwarded-Proto`` and ``X-Forwarded-For`` fix both,
but anybody can send those headers: they are read only when the TCP peer is in one of the
``--trusted-proxy`` networks, and the forwarded scheme can only upgrade a request to https,
never downgrade a connection that is TLS to the collector itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from resolver.errors import LachanError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_networks(values: Iterable[str], flag: str = "--trusted-proxy") -> tuple[Network, ...]:
    """CIDR networks (a bare address is its own /32 or /128); one clear error for a typo."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise LachanError(f"{flag} {value!r}: not an IP address or CIDR network") from None
    return tuple(out)


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def forwarded(peer: str | None, headers: Mapping[str, str],
              networks: tuple[Network, ...]) -> tuple[str | None, bool]:  # fmt: skip
    """``(client address, https claimed)`` as a trusted proxy reports them; else the peer's.

    X-Forwarded-For is read from the right: each proxy appends the address it saw, so the
    rightmost address that is not a trusted proxy is the client (anything left of it could
    have been made up by the client). The proto is the last value, set by the nearest proxy.
    """
    if not networks or not _trusted(peer, networks):
        return peer, False
    client = peer
    for hop in reversed(headers.get("X-Forwarded-For", "").split(",")):
        hop = hop.strip()
        if not hop:
            continue
        client = hop
        if not _trusted(hop, networks):
            break
    proto = headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return client, proto == "https"


def middleware(networks: tuple[Network, ...]) -> Middleware:
    """Rewrite ``request.remote`` and ``request.secure`` for what trusted proxies forwarded."""

    @web.middleware
    async def behind_proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
        client, https = forwarded(request.remote, request.headers, networks)
        if client is None or (client == request.remote and (request.secure or not https)):
            return await handler(request)
        scheme = "https" if request.secure or https else request.scheme
        return await handler(request.clone(remote=client, scheme=scheme))

    return behind_proxy
