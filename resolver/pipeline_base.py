"""The resolver's shared state: snapshots, per-listener client tables, and what every
stage of the pipeline reads (resolver/pipeline.py puts the stages in order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .acl import Acl
from .cache import Cache
from .forward import Dispatcher, Exchange
from .policy.decision import Block
from .querystate import ClientState, ServePolicy
from .ratelimit import RateLimiter
from .stats import Stats

if TYPE_CHECKING:  # annotations only
    from .querylog import QueryLog
    from .state import ServingState


class ResolverBase:
    """What every stage shares; the stages build on it in turn."""

    cache: Cache
    dispatcher: Dispatcher
    policy: ServePolicy
    clock: Callable[[], float]
    wallclock: Callable[[], float]
    stats: Stats
    acl: Acl
    ratelimit: RateLimiter | None
    state: ServingState
    _memos: dict[object, dict[bytes, tuple]]
    _block_labels_memo: dict[int, tuple[Block, tuple]]
    _count_cache_hit: Callable[[], None]
    _rewrite_counters: dict[str, Callable[[], None]]
    _fasts: dict[str, dict[int, tuple | bool]]
    _client_tables: list[dict[str, ClientState]]
    clients_epoch: int
    _inflight: dict[bytes, Exchange]
    _prefetching: set[bytes]
    dropped: int
    querylog: QueryLog | None

    # -- snapshots --------------------------------------------------------------------------
    def swap_state(self, state: ServingState, acl: Acl | None = None) -> None:
        """Serve from a new snapshot; the cache stays, prepared answers and clients reset."""
        self.state = state
        self.clients_epoch += 1
        if acl is not None:
            self.acl = acl
        for memo in self._memos.values():
            memo.clear()
        self._memos = {}
        for fast in self._fasts.values():
            fast.clear()
        self._fasts = {}
        for table in self._client_tables:
            table.clear()

    def client_table(self) -> dict[str, ClientState]:
        """A per-listener cache of ClientState by address (cleared in place on reload)."""
        table: dict[str, ClientState] = {}
        self._client_tables.append(table)
        return table

    def forget_clients(
        self, addresses: Iterable[str], covers: Callable[[str], bool] | None = None
    ) -> None:
        """Drop the per-client state (and so the prepared answers) of these addresses and of
        any cached address ``covers``; every other client keeps its state (subscriber
        bindings change one line at a time)."""
        self.clients_epoch += 1  # connections choose again (they keep one client each)
        for table in self._client_tables:
            for ip in addresses:
                table.pop(ip, None)
                table.pop("::ffff:" + ip, None)
            if covers is not None:
                for ip in [ip for ip in table if covers(ip)]:
                    del table[ip]

    def close(self) -> None:
        self.dispatcher.close()
