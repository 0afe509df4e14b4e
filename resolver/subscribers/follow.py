"""Keeps a process's replica current: a thread follows the store, the event loop applies.

The store's calls block, so they run in one daemon thread; every change is handed to the
loop with ``call_soon_threadsafe``, where the replica is read by queries, so the replica is
only ever mutated on the thread that reads it. On an outage the replica stays as it was
(serving the last known bindings beats serving everyone the default), the outage is
logged once, and the thread reconnects with back-off and reloads everything.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Callable

from ..policy.clients import address_key
from .replica import Affected, Replica, Update
from .store import StoreUnavailable, SubscriberStore

log = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 8.0
CHUNK = 2000  # updates applied per loop callback during a resync: a few ms each


class Follower:
    """One store's change feed applied to one replica; ``up`` feeds the store metric."""

    def __init__(
        self,
        store: SubscriberStore,
        replica: Replica,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[Affected], None],
    ) -> None:
        self.store, self.replica, self.loop, self.on_change = store, replica, loop, on_change
        self.up = True
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lachan-subscribers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self.stop.is_set():
            try:
                for batch in self.store.follow(self.stop):
                    if batch is None:
                        self._resync()
                    else:
                        self._hand(batch)
                    self._mark_up()
                    delay = BACKOFF_FIRST
            except StoreUnavailable as exc:
                self._mark_down(exc)
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    def _resync(self) -> None:
        """Become the store's state again, unless it has not changed since the replica did.

        The diff is computed here, off the event loop (a million bindings take seconds), once
        every update handed before has been applied: nothing else changes the replica then.
        It is then applied in chunks, so DNS answers keep flowing between them."""
        version = self.replica.version
        if version is not None and self.store.version() == version:
            return  # loaded at start (or unchanged through an outage): nothing to redo
        profiles, bindings = self.store.load()
        loaded = self.store.loaded_version
        self._quiesce()
        updates = self.replica.diff(profiles, bindings)
        del profiles, bindings
        for start in range(0, len(updates), CHUNK):
            self._hand(updates[start : start + CHUNK])
        self.loop.call_soon_threadsafe(setattr, self.replica, "version", loaded)

    def _quiesce(self) -> None:
        """Wait until the loop has applied everything handed so far (its queue is FIFO)."""
        done = threading.Event()
        self.loop.call_soon_threadsafe(done.set)
        while not done.wait(0.5) and not self.stop.is_set():
            pass

    def _hand(self, updates: list[Update]) -> None:
        try:
            self.loop.call_soon_threadsafe(self._apply, updates)
        except RuntimeError:  # the loop closed: the process is stopping
            self.stop.set()

    def _apply(self, updates: list[Update]) -> None:
        self.replica.version = None  # newer than any version read so far
        affected = self.replica.apply(updates)
        if affected:
            self.on_change(affected)

    def _mark_up(self) -> None:
        if not self.up:
            log.warning("subscriber store reachable again: replica reloaded")
        self.up = True

    def _mark_down(self, exc: StoreUnavailable) -> None:
        if self.up:  # once per outage, not once per retry
            log.error("subscriber store unreachable, serving the last replica: %s", exc)
        self.up = False


def invalidator(replica: Replica, forget: Callable[..., None]) -> Callable[[Affected], None]:
    """What to tell the resolver when the replica changed: exact addresses, or a test."""

    def changed(affected: Affected) -> None:
        if affected.everything:
            forget((), lambda ip: True)
            return
        covers = None
        if affected.networks or affected.subscribers:
            covers = _covers(replica, affected)
        forget(affected.addresses, covers)

    return changed


def _covers(replica: Replica, affected: Affected) -> Callable[[str], bool]:
    networks, subscribers = tuple(affected.networks), affected.subscribers

    def covers(ip: str) -> bool:
        try:
            bits, value = address_key(ip)
        except OSError:
            return False
        if subscribers:
            binding = replica.binding(bits, value)
            if binding is not None and binding.subscriber in subscribers:
                return True
        address = ipaddress.ip_address(value) if bits == 32 else ipaddress.IPv6Address(value)
        return any(address in network for network in networks)

    return covers
