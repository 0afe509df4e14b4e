"""DNS over UDP: answer hits inside ``datagram_received``; only misses become tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from ..pipeline import Resolver
from ..wire import Query

log = logging.getLogger(__name__)


class UdpListener(asyncio.DatagramProtocol):
    """One UDP socket. The fast path is inlined here on purpose: it is the hottest code."""

    def __init__(self, resolver: Callable[[], Resolver], tasks: set[asyncio.Task[None]]) -> None:
        self._resolver = resolver  # a getter: a reload swaps the Resolver under us
        self._tasks = tasks
        self._transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.received += 1
        resolver = self._resolver()
        prepared = resolver.memo.get(data[2:])
        if prepared is not None and prepared[0] > resolver.clock():
            self._transport.sendto(data[:2] + prepared[1], addr)  # type: ignore[union-attr]
            return
        try:
            result = resolver.answer_now(data, True)
        except Exception:  # a bug must cost one query, never the listener
            self.errors += 1
            log.exception("error answering a UDP query")
            return
        if result is None:
            return
        if isinstance(result, Query):
            resolver.start_miss(result, True, partial(self._reply, addr))
            return
        self._transport.sendto(result, addr)  # type: ignore[union-attr]

    def _reply(self, addr: tuple, response: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.sendto(response, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for replies we sent (client went away): nothing to do.
        log.debug("UDP error: %s", exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
