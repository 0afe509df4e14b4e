"""DNS over TCP (RFC 7766): length-framed, pipelined, answered as each query completes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..pipeline import Resolver
from ..wire import Query

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TcpPolicy:
    idle_timeout: float = 10.0  # RFC 7766 6.2.3: seconds a connection may sit without a query
    max_connections: int = 1_000
    max_inflight_per_connection: int = 64  # reading pauses beyond this many open queries


class TcpServerState:
    """Live connections of all TCP listeners, so limits and shutdown see every one."""

    def __init__(self, policy: TcpPolicy) -> None:
        self.policy = policy
        self.connections: set[TcpConnection] = set()
        self.rejected = 0

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close()


class TcpConnection(asyncio.Protocol):
    """One client connection; slow or half-framed senders only ever hold up themselves."""

    def __init__(
        self,
        resolver: Callable[[], Resolver],
        state: TcpServerState,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._resolver = resolver
        self._state = state
        self._tasks = tasks
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._inflight = 0
        self._paused = False
        self._idle: asyncio.TimerHandle | None = None
        self._last_activity = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if len(self._state.connections) >= self._state.policy.max_connections:
            self._state.rejected += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        self._state.connections.add(self)
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._last_activity = asyncio.get_running_loop().time()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2 and self._transport is not None:
            size = (buffer[0] << 8) | buffer[1]
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            self._answer(message)

    def _answer(self, message: bytes) -> None:
        resolver = self._resolver()
        try:
            result = resolver.answer_now(message, False)
        except Exception:
            log.exception("error answering a TCP query")
            self.close()
            return
        if result is None:
            return
        if isinstance(result, Query):
            self._start_miss(resolver, result)
        else:
            self._send(result)

    def _start_miss(self, resolver: Resolver, query: Query) -> None:
        if not resolver.can_start_miss():
            return
        self._inflight += 1
        if self._inflight >= self._state.policy.max_inflight_per_connection and self._transport:
            self._transport.pause_reading()
            self._paused = True
        task = asyncio.get_running_loop().create_task(self._miss(resolver, query))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _miss(self, resolver: Resolver, query: Query) -> None:
        try:
            self._send(await resolver.resolve(query, False))
        except Exception:
            log.exception("error resolving a TCP query")
        finally:
            self._inflight -= 1
            if self._paused and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            self._last_activity = asyncio.get_running_loop().time()

    def _send(self, response: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(len(response).to_bytes(2, "big") + response)

    def _arm_idle_timer(self, delay: float | None = None) -> None:
        # One timer per connection, re-armed only when it fires: cheaper than resetting a
        # timer on every segment of a busy pipelined connection.
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        timeout = self._state.policy.idle_timeout
        self._idle = loop.call_later(timeout if delay is None else delay, self._on_idle)

    def _on_idle(self) -> None:
        if self._transport is None:
            return
        timeout = self._state.policy.idle_timeout
        quiet = asyncio.get_running_loop().time() - self._last_activity
        if self._inflight or quiet < timeout:
            # answers still owed, or traffic since the timer was set: look again later
            self._idle = asyncio.get_running_loop().call_later(
                max(0.05, timeout - quiet), self._on_idle
            )
        else:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
