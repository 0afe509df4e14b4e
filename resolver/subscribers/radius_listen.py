"""The RADIUS accounting listener: an asyncio UDP protocol that only moves bytes.

Decoding and deciding are in ``radius``; the store write runs in the loop's executor (it
blocks), one at a time, each storing every request that arrived while the previous one ran;
the Accounting-Response goes out only once the write succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from .radius import RESULTS, Action, action_of, decode, load_dictionary
from .replica import Binding, Replica, prefix_key
from .settings import RadiusSettings
from .store import StoreUnavailable, SubscriberStore

log = logging.getLogger(__name__)
MAX_PENDING = 4096  # requests waiting for the store; beyond it the NAS retransmits later
MAX_BATCH = 500  # requests stored in one write
_Queued = tuple[Action, bytes, tuple[Any, ...]]


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
        self.queue: list[_Queued] = []
        self.writing = False

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
        if len(self.queue) >= MAX_PENDING:
            self.results["store_error"] += 1
            return
        self.queue.append((action, request.reply, addr))
        if not self.writing:
            self._write_next()

    def _write_next(self) -> None:
        """Store what queued up while the last write ran, in one write (one round trip)."""
        batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
        self.writing = True
        actions = [action for action, _, _ in batch]
        future = asyncio.get_running_loop().run_in_executor(None, self._store, actions)
        future.add_done_callback(lambda f: self._stored(f, batch))

    def _store(self, actions: list[Action]) -> None:
        changes: list[tuple[str, Binding | None]] = []
        for action in actions:  # in arrival order: a Start then its Stop stay in that order
            if action.kind == "unbind_nas":
                if changes:
                    self.store.change(changes)
                    changes = []
                self.store.unbind_nas(action.nas)
            else:
                changes += [(prefix, action.binding) for prefix in action.prefixes]
        if changes:
            self.store.change(changes)

    def _stored(self, future: asyncio.Future[None], batch: list[_Queued]) -> None:
        self.writing = False
        exc = future.exception()
        if exc is not None:
            self.results["store_error"] += len(batch)
            if not isinstance(exc, StoreUnavailable):
                log.error("RADIUS accounting not stored: %s", type(exc).__name__)
        else:  # no answer on failure: the NAS retries, as RFC 2866 intends
            self.results["ok"] += len(batch)
            for _, reply, addr in batch:
                self._send(reply, addr)
        if self.queue:
            self._write_next()

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


RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes asked for the accounting socket's receive buffer


async def open_radius(
    settings: RadiusSettings, listener: RadiusListener
) -> asyncio.DatagramTransport:
    """Bind the accounting port; an OSError (port in use) is the caller's to report."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        # A BNG sends accounting in bursts (a line card's sessions at once); with the default
        # buffer (208 KiB) a few tens of milliseconds of store writes dropped 3% of 5,000/s
        # (the kernel's RcvbufErrors). The kernel caps this at net.core.rmem_max.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((settings.host, settings.port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    transport, _ = await loop.create_datagram_endpoint(lambda: listener, sock=sock)
    return transport
