"""DNS over UDP: answer hits inside ``datagram_received``; misses complete by callback."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from ..pipeline import UDP, Miss, Resolver
from ..proxyv2 import ProxyV2Error, parse_proxy_v2

log = logging.getLogger(__name__)


class UdpListener(asyncio.DatagramProtocol):
    """One UDP socket. The fast path is inlined here on purpose: it is the hottest code."""

    def __init__(self, resolver: Resolver, listener: tuple[str, int]) -> None:
        self._resolver = resolver
        self._listener = listener
        self._clients = resolver.client_table()  # cleared in place when a reload swaps state
        self._proxied = resolver.client_table()  # real clients behind a trusted front end
        self._transport: asyncio.DatagramTransport | None = None
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        resolver = self._resolver
        client = self._clients.get(addr[0])
        if client is not None and client.memo is not None:
            # An identical packet from a client of the same profile was answered within the
            # last second: resend that answer under this query's ID.
            prepared = client.memo.get(data[2:])
            if prepared is not None and prepared[0] > resolver.clock():
                self._transport.sendto(data[:2] + prepared[1], addr)  # type: ignore[union-attr]
                resolver.count_prepared(prepared)
                return
        try:
            if client is None:
                client = resolver.client(self._clients, addr[0], self._listener)
            ip = addr[0]
            if client.proxy:
                unwrapped = self._unwrap(data, ip)
                if unwrapped is None:
                    return
                data, ip = unwrapped
                client = self._proxied.get(ip) or resolver.client(self._proxied, ip, self._listener)
            result = resolver.answer(data, client, ip, UDP)
            if result is None:
                return
            if isinstance(result, Miss):
                resolver.start_miss(result, UDP, partial(self._reply, addr))
                return
        except Exception:  # a bug must cost one query, never the listener
            self.errors += 1
            log.exception("error answering a UDP query")
            return
        self._transport.sendto(result, addr)  # type: ignore[union-attr]

    def _unwrap(self, data: bytes, peer: str) -> tuple[bytes, str] | None:
        """The DNS message and real client address inside a PROXY v2 datagram (dnsdist)."""
        try:
            header = parse_proxy_v2(data)
        except ProxyV2Error as exc:
            log.debug("dropping a malformed PROXY v2 datagram from %s: %s", peer, exc)
            return None
        if header is None:
            return None  # a datagram cannot continue later: incomplete means malformed
        source = header.source[0] if header.source is not None else peer
        return bytes(data[header.length :]), source

    def _reply(self, addr: tuple, response: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.sendto(response, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for replies we sent (the client went away): nothing to do.
        log.debug("UDP error: %s", exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
