"""DNS over UDP: answer hits inside ``datagram_received``; misses complete by callback."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from ..pipeline import UDP, ClientState, Miss, Resolver
from ..proxyv2 import ProxyV2Error, parse_proxy_v2
from ..ratelimit import Verdict

log = logging.getLogger(__name__)
PASS = Verdict.PASS


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
        verdict = None  # the rate limiter's, asked once per packet; None: answer() asks it
        prepared = None  # an identical packet's answer that ran out, if renewable
        if client is not None and client.memo is not None:
            if client.limit is not None:
                verdict = client.limit(addr[0])
            if verdict is None or verdict is PASS:
                # An identical packet from a client of the same profile was answered within
                # the last second: resend that answer under this query's ID.
                prepared = client.memo.get(data[2:])
                if prepared is not None and prepared[0] > resolver.clock():
                    self._transport.sendto(data[:2] + prepared[1], addr)  # type: ignore[union-attr]
                    resolver.count_prepared(prepared)
                    return
        try:
            if prepared is not None and prepared[5] is not None:
                # ... answered before, and its TTLs have ticked since: made again from the
                # same cache entry when nothing else changed (pipeline.renew).
                renewed = resolver.renew(data, client, prepared, UDP)  # type: ignore[arg-type]
                if renewed is not None:
                    self._transport.sendto(renewed, addr)  # type: ignore[union-attr]
                    return
            ip = addr[0]
            if client is None:
                client = resolver.client(self._clients, ip, self._listener)
                if client.limit is not None:
                    verdict = client.limit(ip)
            if client.proxy:
                unwrapped = self._unwrap(data, ip)
                if unwrapped is None:
                    return
                data, ip = unwrapped
                client = self._proxied.get(ip) or resolver.client(self._proxied, ip, self._listener)
                verdict = None if client.limit is None else client.limit(ip)
                # Behind dnsdist every packet comes this way: the real client's prepared
                # answers serve it as they would serve it directly.
                if (
                    client.memo is not None
                    and (verdict is None or verdict is PASS)
                    and self._send_memo_answer(data, addr, client)
                ):
                    return
            if (
                client.fast is not None
                and (verdict is None or verdict is PASS)
                and self._send_prepared_block(data, addr, client)
            ):
                return
            result = resolver.answer(data, client, ip, UDP, verdict)
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

    def _send_memo_answer(self, data: bytes, addr: tuple, client: ClientState) -> bool:
        """The memo lookup of datagram_received, for packets unwrapped from PROXY v2 (the
        direct path keeps it inline: it is the hottest code there is)."""
        response = self._resolver.prepared_memo(data, client, UDP)
        if response is None:
            return False
        self._transport.sendto(response, addr)  # type: ignore[union-attr]
        return True

    def _send_prepared_block(self, data: bytes, addr: tuple, client: ClientState) -> bool:
        """A list-blocked name answered from a prepared block (resolver/fastpath.py)."""
        response = self._resolver.prepared_block(data, client, UDP)
        if response is None:
            return False
        self._transport.sendto(response, addr)  # type: ignore[union-attr]
        return True

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
        # An empty response is silence (a drop-mode block reached after a miss), never an
        # empty datagram.
        if response and transport is not None and not transport.is_closing():
            transport.sendto(response, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for replies we sent (the client went away): nothing to do.
        log.debug("UDP error: %s", exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
