"""DNS over TCP (RFC 7766): length-framed, pipelined, answered as each query completes."""

from __future__ import annotations

import asyncio
import logging

from .. import reply
from ..pipeline import TCP, ClientState, Miss, Resolver
from ..proxyv2 import ProxyV2Error, parse_proxy_v2
from ..wire import SERVFAIL
from .tcp_limits import TcpPolicy, TcpServerState, tcp_limiter  # noqa: F401 - config, app

log = logging.getLogger(__name__)


class TcpStream:
    """One client connection; slow or half-framed senders only ever hold up themselves.

    Not an asyncio.Protocol itself: uvloop hands a Protocol's reads over as new objects, and
    treats only other classes with ``get_buffer`` as buffered (DoT is one: dot.py).
    """

    def __init__(
        self,
        resolver: Resolver,
        state: TcpServerState,
        listener: tuple[str, int],
    ) -> None:
        self._resolver = resolver
        self._listener = listener
        self._client: ClientState | None = None
        self._client_epoch = -1  # resolver.clients_epoch when self._client was chosen
        self._peer = ""
        self._expect_proxy = False
        self._state = state
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._inflight = 0
        self._paused = False  # reading paused (too many open queries, or output backed up)
        self._write_paused = False
        self._counted = ""  # the address ``refusal`` counted, to release on close
        self._proxied = False
        self.buffered = 0  # bytes queued for the client at the last measure (see tcp_limits)
        self._idle: asyncio.TimerHandle | None = None
        self._last_activity = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if not peer:
            # Reset before we could ask who it was: nothing to check the ACL against.
            transport.abort()  # type: ignore[attr-defined]
            return
        self._peer = peer[0]
        if self._listener[0] in ("0.0.0.0", "::"):  # a wildcard bind: the address asked
            local = transport.get_extra_info("sockname")
            self._listener = (local[0], self._listener[1]) if local else self._listener
        clients = self._resolver.state.clients
        self._proxied = clients.trusts_proxy(self._peer)
        allowed = self._resolver.acl.allows(self._peer)
        if self._state.refusal(self._peer, allowed, self._proxied) is not None:
            transport.abort()  # type: ignore[attr-defined]
            return
        self._transport = transport  # type: ignore[assignment]
        self._counted = self._peer
        self._state.connections.add(self)
        self._expect_proxy = self._proxied
        limit = self._state.policy.output_buffer
        self._transport.set_write_buffer_limits(high=limit, low=limit // 4)  # type: ignore[union-attr]
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self._state.connections:
            self._state.connections.discard(self)
            self._state.forget(self)
            self._state.closed(self._counted, self._proxied)
        if self._idle is not None:
            self._idle.cancel()
        self._transport = None

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its queries too, so what it
        # sends stays in its own socket buffers instead of growing ours.
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._last_activity = asyncio.get_running_loop().time()  # it reads: not idle
        if self._transport is not None:
            self._state.account(self, self._transport.get_write_buffer_size())
        self._update_reading()
        self._answer_buffered()  # frames read before the pause

    def write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        blocked = self._write_paused or (
            self._inflight >= self._state.policy.max_inflight_per_connection
        )
        if blocked and not self._paused:
            transport.pause_reading()
        elif self._paused and not blocked:
            transport.resume_reading()
        self._paused = blocked

    def data_received(self, data: bytes) -> None:
        # Only whole messages count as activity (in _answer_buffered): a sender trickling one
        # frame a byte at a time must not hold its connection slot forever (slowloris).
        buffer = self._buffer
        buffer += data
        if self._expect_proxy and not self._read_proxy_header():
            return
        self._answer_buffered()

    def _answer_buffered(self) -> None:
        # Stop at the in-flight limit or a full output buffer even mid-buffer: a pipelined
        # burst arrives in one segment, and pausing the socket alone would still answer
        # every query in it (each answer up to 64 KB).
        buffer = self._buffer
        while len(buffer) >= 2 and self._transport is not None and not self._paused:
            size = (buffer[0] << 8) | buffer[1]
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            self._last_activity = asyncio.get_running_loop().time()
            self._answer(message)

    def _read_proxy_header(self) -> bool:
        """Strip the PROXY v2 header a trusted front end sends first; False to wait or stop."""
        try:
            header = parse_proxy_v2(self._buffer)
        except ProxyV2Error as exc:
            log.debug("closing: malformed PROXY v2 header from %s: %s", self._peer, exc)
            self.close()
            return False
        if header is None:
            return False  # incomplete: wait for more bytes
        del self._buffer[: header.length]
        if header.source is not None:
            self._peer = header.source[0]
        self._expect_proxy = False
        return True

    def _answer(self, message: bytes) -> None:
        resolver = self._resolver
        try:
            client = self._client
            if client is None or self._client_epoch != resolver.clients_epoch:
                # First query, or a reload or subscriber change since: choose again, so a
                # long-lived connection (dnsdist's pool to its backends) follows the new policy.
                client = self._client = resolver.client({}, self._peer, self._listener)
                self._client_epoch = resolver.clients_epoch
            result = resolver.respond(message, client, self._peer, TCP)
        except Exception:
            log.exception("error answering a TCP query")
            self.close()
            return
        if result is None:
            return
        if isinstance(result, Miss):
            self._start_miss(resolver, result)
        else:
            self._send(result)

    def _start_miss(self, resolver: Resolver, miss: Miss) -> None:
        # Answers may go out in any order (RFC 7766 7): each is sent as it completes.
        if not resolver.start_miss(miss, TCP, self._miss_done):
            # Too many misses in flight: over TCP the client waits for every answer, so say
            # SERVFAIL rather than leave it hanging (UDP just drops, as unbound does).
            query = miss.query
            self._send(reply.error(query.data, SERVFAIL, query, resolver.policy.udp_size))
            return
        self._inflight += 1
        self._update_reading()

    def _miss_done(self, response: bytes) -> None:
        self._inflight -= 1
        self._send(response)
        if self._paused:
            self._update_reading()
            self._answer_buffered()  # frames that arrived while we were at the limit
        self._last_activity = asyncio.get_running_loop().time()

    def _send(self, response: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not response:
            # A block in drop mode: over TCP, silence is closing without an answer (an empty
            # frame would be a malformed message, not silence).
            transport.close()
            return
        transport.write(len(response).to_bytes(2, "big") + response)
        self._state.account(self, transport.get_write_buffer_size())

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
        if self._write_paused:
            self.abort()  # idle with answers it never read: close() would wait for it forever
        elif self._inflight or quiet < timeout:
            # answers still owed, or traffic since the timer was set: look again later
            self._idle = asyncio.get_running_loop().call_later(
                max(0.05, timeout - quiet), self._on_idle
            )
        else:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class TcpConnection(TcpStream, asyncio.Protocol):
    """Plain DNS over TCP: uvloop reads a TCP socket into its own buffer already."""
