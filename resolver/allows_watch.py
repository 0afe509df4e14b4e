"""Serving processes follow the temporary-allows file: a change or an expiry applies at once.

A teacher's `lachan allow` (or the console) rewrites one small file; every worker checks it
once a second (one stat) and, when it changed or an allow in it starts or ends, rebuilds its
profiles from the current config and index, off the event loop, then swaps them in. No
reload signal, no supervisor round trip, and a restart reads the same file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .allows import AllowStore, next_change

log = logging.getLogger(__name__)
CHECK_EVERY = 1.0  # seconds: "applies at once" for a teacher, one stat() for the server
_UNKNOWN = object()


class AllowsWatch:
    """Says when the allows in force may have changed since the last rebuild."""

    def __init__(self, store: AllowStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        # Unknown at first: the profiles in force were built before this watch began, and the
        # file may have been written in between (a worker starting as a teacher saves).
        self._seen: tuple[int, int] | None | object = _UNKNOWN
        self._next: float | None = None

    def due(self) -> bool:
        """True when the file changed, or an allow in it started or ended, since last time
        (the first call: whenever the file exists)."""
        seen = self._fingerprint()
        if self._seen is _UNKNOWN and seen is None:
            self._seen = None
            return False
        if seen != self._seen or (self._next is not None and self._clock() >= self._next):
            self._seen = seen
            self._next = self._next_change()
            return True
        return False

    def _fingerprint(self) -> tuple[int, int] | None:
        try:
            st = self._store.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _next_change(self) -> float | None:
        try:
            return next_change(self._store.load(), self._clock())
        except Exception:  # noqa: BLE001 (a half-written or bad file: the next check retries)
            return None


def follow_allows(store: AllowStore, rebuild: Callable[[], Awaitable[object]]) -> None:
    """Check every second on the running loop; ``rebuild`` when the allows may have changed.

    One rebuild at a time: each runs off the loop and can outlast the second between checks,
    and two side by side could finish out of order, the older swapping back in the allows the
    newer had replaced (an allow gone half a second after it came, seen under load). A change
    seen while one runs asks for one more after it, which reads the file as it is then."""
    loop = asyncio.get_running_loop()
    watch = AllowsWatch(store)
    running: asyncio.Task[None] | None = None
    again = False

    async def rebuild_in_turn() -> None:
        nonlocal again
        while True:
            again = False
            try:
                await rebuild()
            except Exception as exc:  # noqa: BLE001 (serving goes on with the profiles it has)
                log.error("temporary allows not applied: %s: %s", type(exc).__name__, exc)
            if not again:
                return

    def check() -> None:
        nonlocal running, again
        if watch.due():
            if running is not None and not running.done():
                again = True
            else:
                running = loop.create_task(rebuild_in_turn())
        loop.call_later(CHECK_EVERY, check)

    loop.call_later(CHECK_EVERY, check)
