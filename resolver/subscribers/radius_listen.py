"""The RADIUS accounting listener: an asyncio UDP protocol that only moves bytes.

Decoding and deciding are in ``radius``; the store write runs in the loop's executor (it
blocks), and the Accounting-Response goes out only once the write succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from .radius import RESULTS, Action, action_of, decode, load_dictionary
from .replica import Replica, prefix_key
from .settings import RadiusSettings
from .store import StoreUnavailable, SubscriberStore

log = logging.getLogger(__name__)
MAX_PENDING = 4096  # writes waiting for the store; beyond it the NAS retransmits later


class RadiusListener(asyncio.DatagramProtocol):
    """Accounting-Request in, Accounting-Response out; counts every outcome by reason."""

    def __init__(
        self,
        settings: RadiusSettings,
        secret: bytes,
        store: SubscriberStore,
        replica: Replica | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.secret, self.store = settings, secret, store
        self.replica, self.clock = replica, clock
        self.dictionary = load_dictionary()
        self.results: dict[str, int] = dict.fromkeys(RESULTS, 0)
        self.transport: asyncio.DatagramTransport | None = None
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        request = decode(data, addr[0], self.secret, self.settings, self.dictionary)
        if isinstance(request, str):
            self.results[request] += 1
            return
        action = action_of(request, self.clock())
        if action.kind == "unbind":  # a late Stop must not unbind the address's next holder
            mine = tuple(
                p for p in action.prefixes if not self.owned_elsewhere(p, request.subscriber)
            )
            action = Action("unbind", mine) if mine else Action("none")
        if action.kind == "none":
            self.results["ignored"] += 1
            self._send(request.reply, addr)
            return
        if self.pending >= MAX_PENDING:
            self.results["store_error"] += 1
            return
        self.pending += 1
        future = asyncio.get_running_loop().run_in_executor(None, self._store, action)
        future.add_done_callback(lambda f: self._stored(f, request.reply, addr))

    def _store(self, action: Action) -> None:
        if action.kind == "bind":
            assert action.binding is not None
            self.store.bind(list(action.prefixes), action.binding)
        elif action.kind == "unbind":
            self.store.unbind(list(action.prefixes))
        else:
            self.store.unbind_nas(action.nas)

    def _stored(self, future: asyncio.Future[None], reply: bytes, addr: tuple[Any, ...]) -> None:
        self.pending -= 1
        if future.exception() is not None:
            exc = future.exception()
            self.results["store_error"] += 1
            if not isinstance(exc, StoreUnavailable):
                log.error("RADIUS accounting not stored: %s", type(exc).__name__)
            return  # no answer: the NAS retries, as RFC 2866 intends
        self.results["ok"] += 1
        self._send(reply, addr)

    def _send(self, reply: bytes, addr: tuple[Any, ...]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def owned_elsewhere(self, prefix: str, subscriber: str) -> bool:
        """Whether the replica has ``prefix`` bound to another subscriber (a late Stop)."""
        if self.replica is None:
            return False
        bits, _plen, value = prefix_key(prefix)
        binding = self.replica.binding(bits, value)
        return binding is not None and binding.subscriber != subscriber


async def open_radius(
    settings: RadiusSettings, listener: RadiusListener
) -> asyncio.DatagramTransport:
    """Bind the accounting port; an OSError (port in use) is the caller's to report."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    transport, _ = await loop.create_datagram_endpoint(
        lambda: listener, local_addr=(settings.host, settings.port), family=family
    )
    return transport
