"""Connection caps and a header deadline for the console and block page (against slowloris).

The request rate limits (limits.py) count requests, but a client that opens many connections
and sends its headers a byte at a time, or never, makes no request at all: it only holds
sockets and file descriptors. As on the DNS side's TCP (transport/tcp_limits.py), each
listener caps the connections open from one address and in all, and closes the extra ones at
once; and a connection must finish a request's headers within ``HEADER_DEADLINE`` seconds of
its opening or of the end of its previous answer, or it is closed. The deadline is aiohttp's
own keep-alive timer (it starts when the connection opens and again after each answer, and
closes a connection still waiting for a complete request); this module only counts its closes.
A form's body has as long again once its headers are in (web.posted, answered 408).

A person at the attacking address is refused until the attacker's connections meet the
deadline; everyone else is served. Addresses are held in memory while their connections are
open, never logged or written; the counts say how many connections were closed, not whose.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..stats import CONSOLE_REFUSAL_REASONS

log = logging.getLogger(__name__)

HEADER_DEADLINE = 10.0  # seconds to send a complete request line and headers
LINGER = 2.0  # seconds an answered request's unread body is still read before closing
REASONS = CONSOLE_REFUSAL_REASONS  # why a connection was closed by a limit


@dataclass(frozen=True, slots=True)
class Caps:
    """At most ``per_address`` connections open from one address, ``total`` in all."""

    per_address: int
    total: int


CONSOLE_CAPS = Caps(16, 256)  # a few staff browsers (each opens about 6 connections)
BLOCKPAGE_CAPS = Caps(32, 1024)  # every device on the network may meet it, apps retrying


@dataclass
class ConnectionGuard:
    """The open connections of one listener, by address; ``closed``: reason -> count, also
    added to ``counters`` (the hosting process's ``Stats.console_refused``, the
    ``lachan_console_refused_total`` family) under (``listener``, reason)."""

    what: str  # "console" or "block page", for the one warning line
    listener: str  # "console" or "blockpage": the metric's label
    caps: Caps
    counters: dict[tuple[str, str], int] | None = None
    open: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    _all: int = 0
    _warned: bool = False

    def enter(self, address: str) -> bool:
        """Count a new connection in, or say why not (the caller closes it)."""
        mine = self.open.get(address, 0)
        reason = ("total" if self._all >= self.caps.total
                  else "per_address" if mine >= self.caps.per_address else "")  # fmt: skip
        if reason:
            self.count(reason)
            return False
        self.open[address] = mine + 1
        self._all += 1
        return True

    def leave(self, address: str) -> None:
        left = self.open.get(address, 0) - 1
        if left > 0:
            self.open[address] = left
        else:
            self.open.pop(address, None)
        self._all = max(0, self._all - 1)

    def count(self, reason: str) -> None:
        self.closed[reason] += 1
        if self.counters is not None:
            key = (self.listener, reason)
            self.counters[key] = self.counters.get(key, 0) + 1
        if not self._warned:  # once: a flood must not fill the log (and no address in it)
            self._warned = True
            log.warning("%s: a connection was closed by a limit (%s); later ones are only "
                        "counted", self.what, reason)  # fmt: skip


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol, counted in and out of a ``ConnectionGuard``."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._address: str | None = None  # set once counted in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self._guard.enter(address):
            cast(asyncio.Transport, transport).abort()  # closed at once; aiohttp never sees it
            return
        self._address = address
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._address is None:
            return  # refused in connection_made
        self._guard.leave(self._address)
        self._address = None
        super().connection_lost(exc)

    def too_slow(self) -> None:
        """A request's body was not all sent in time (web.posted answers it 408): count it,
        and close the connection after the answer."""
        self._guard.count("slow")
        self.close()

    def _process_keepalive(self) -> None:
        """aiohttp's deadline timer: count the connections it closes."""
        before = self._force_close
        super()._process_keepalive()
        if self._force_close and not before:
            self._guard.count("slow")


class GuardedServer(web.Server):
    """A ``web.Server`` (the protocol factory given to ``loop.create_server``) whose
    connections pass a guard first."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, self.guard, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` serving through a ``GuardedServer`` with the header deadline."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=HEADER_DEADLINE, lingering_time=LINGER, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return GuardedServer(server.request_handler, request_factory=server.request_factory,
                             handler_cancellation=server.handler_cancellation,
                             loop=server._loop, guard=self.guard, **server._kwargs)  # fmt: skip
