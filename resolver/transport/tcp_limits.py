"""What every TCP connection shares: admission at accept and the output-buffer budget."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..settings import TcpPolicy

if TYPE_CHECKING:
    from ..ratelimit import RateLimitConfig, TcpLimiter


class Buffered(Protocol):
    """A connection as the budget sees it."""

    buffered: int

    def write_buffer_size(self) -> int: ...

    def abort(self) -> None: ...


class TcpServerState:
    """Live connections of all TCP listeners, so limits and shutdown see every one."""

    def __init__(
        self, policy: TcpPolicy, limiter: TcpLimiter | None = None, counters: object = None
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self.counters = counters  # the process's Stats (has tcp_refused), if any
        self.connections: set = set()
        self.rejected = 0
        self.buffered = 0  # bytes queued for clients, as last measured per connection

    def refusal(self, peer: str, allowed: bool, proxied: bool) -> str | None:
        """None to accept (and count) the connection, else why it is closed at once.

        The access list is checked here, before a denied address can hold a connection slot;
        a trusted PROXY v2 front end is checked per query instead (its clients vary).
        """
        if not (allowed or proxied):
            return self._refuse("acl")
        if len(self.connections) >= self.policy.max_connections:
            return self._refuse("total")
        limiter = self.limiter
        if limiter is not None and not proxied and not limiter.try_open(peer):
            return self._refuse("total" if limiter.open >= limiter.total else "per_client")
        return None

    def closed(self, peer: str, proxied: bool) -> None:
        """An accepted connection has gone (undo ``refusal``'s count)."""
        if self.limiter is not None and not proxied:
            self.limiter.closed(peer)

    def _refuse(self, reason: str) -> str:
        # ``reason`` is one of stats.TCP_REFUSAL_REASONS (lachan_tcp_refused_total)
        self.rejected += 1
        counters = self.counters
        if counters is not None:
            refused = counters.tcp_refused  # type: ignore[attr-defined]
            refused[reason] = refused.get(reason, 0) + 1
        return reason

    def account(self, connection: Buffered, size: int) -> None:
        """``connection`` now has ``size`` bytes queued; enforce the budget if over it."""
        self.buffered += size - connection.buffered
        connection.buffered = size
        if self.buffered > self.policy.output_budget:
            self._enforce_budget()

    def forget(self, connection: Buffered) -> None:
        self.buffered -= connection.buffered
        connection.buffered = 0

    def _enforce_budget(self) -> None:
        # The running total only grows between writes (buffers drain silently), so measure
        # every connection before closing any; then close the largest holders first.
        holders = sorted(self.connections, key=_measure, reverse=True)
        self.buffered = sum(c.buffered for c in holders)
        for connection in holders:
            if self.buffered <= self.policy.output_budget or connection.buffered == 0:
                break
            self._refuse("buffer")
            self.forget(connection)
            connection.abort()

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close()


def _measure(connection: Buffered) -> int:
    connection.buffered = connection.write_buffer_size()
    return connection.buffered


def tcp_limiter(config: RateLimitConfig | None) -> TcpLimiter | None:
    """The ``ratelimit.tcp`` caps when rate limiting is configured, else none."""
    if config is None:
        return None
    from ..ratelimit import TcpLimiter

    return TcpLimiter(config.tcp_per_client, config.tcp_total)
