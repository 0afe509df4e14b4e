"""The cache-miss engine: upstream exchanges driven by socket callbacks, not coroutines.

A coroutine, a task and ``wait_for`` per miss cost more than the rest of the miss together,
so an ``Exchange`` is a small state object moved along by three events: a reply arriving on
a non-blocking UDP socket (``add_reader``), the timeout sweep, and (rarely) a TCP retry for a
truncated reply. Identical concurrent misses share one Exchange (coalescing); failover,
health and anti-spoofing checks follow upstream.py's rules (RFC 5452).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from .response import ScannedAnswer
from .upstream import ForwardPolicy, Upstream, UpstreamAddress, same_question
from .wire import HEADER_LEN, REFUSED, SERVFAIL, TC, WireError

log = logging.getLogger(__name__)

Deliver = Callable[[bytes], None]


class Exchange:
    """One upstream resolution for a cache key and the queries waiting for it."""

    __slots__ = (
        "key",
        "message",
        "question",
        "waiters",
        "attempt",
        "token",
        "order",
        "channel",
        "qid",
        "sent",
        "ends",
    )

    def __init__(self, key: bytes, message: bytes) -> None:
        self.key = key
        self.message = message  # our query; its ID is patched per attempt
        self.question = key[:-1]  # lowercase qname + qtype + qclass, to check replies
        self.waiters: list[Any] = []  # owned by the caller (query, deliver ...)
        self.attempt = -1  # index of the current try in ``order``
        self.token = 0  # bumped whenever a pending timeout must no longer apply
        self.order: tuple[_Target, ...] = ()
        self.channel: _Channel | None = None
        self.qid = 0
        self.sent = 0.0
        self.ends = 0.0  # the exchange's overall deadline


class _Channel:
    """A connected non-blocking UDP socket on a kernel-chosen random port."""

    __slots__ = ("target", "sock", "fd", "pending", "used", "retired", "loop")

    def __init__(self, target: _Target, loop: asyncio.AbstractEventLoop) -> None:
        self.target = target
        self.loop = loop
        host, port = target.upstream.address.host, target.upstream.address.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect((host, port))  # the kernel now drops datagrams from anyone else
        self.fd = self.sock.fileno()
        self.pending: dict[int, Exchange] = {}
        self.used = 0
        self.retired = False
        loop.add_reader(self.fd, target.dispatcher._readable, self)

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            self.sock.close()
            self.fd = -1


class _Target:
    """One upstream's health record and socket pool."""

    __slots__ = ("upstream", "dispatcher", "channels")

    def __init__(self, upstream: Upstream, dispatcher: Dispatcher) -> None:
        self.upstream = upstream
        self.dispatcher = dispatcher
        self.channels: list[_Channel] = []

    def channel(self, loop: asyncio.AbstractEventLoop) -> _Channel:
        policy = self.upstream.policy
        if len(self.channels) < policy.sockets_per_upstream:
            channel = _Channel(self, loop)
            self.channels.append(channel)
            return channel
        channel = self.channels[_random16() % len(self.channels)]
        channel.used += 1
        if channel.used >= policy.queries_per_socket:
            # Retire it so the source port changes; it closes once its last reply is in.
            channel.retired = True
            self.channels.remove(channel)
        return channel


class Dispatcher:
    """Sends exchanges to upstreams in health order and reports each outcome once.

    ``parse(reply)`` turns a reply into a ScannedAnswer or raises WireError (then the next
    upstream is tried); ``complete(exchange, answer_or_None)`` receives the outcome.
    """

    def __init__(
        self,
        addresses: tuple[UpstreamAddress, ...],
        policy: ForwardPolicy,
        clock: Callable[[], float],
        parse: Callable[[bytes], ScannedAnswer],
        complete: Callable[[Exchange, ScannedAnswer | None], None],
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.parse = parse
        self.complete = complete
        self.targets = [_Target(Upstream(a, policy, clock), self) for a in addresses]
        # (deadline, exchange, token): attempts share one timeout, so this stays sorted.
        self._deadlines: deque[tuple[float, Exchange, int]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._attempts = policy.attempts or max(2, len(self.targets))
        self._budget = policy.deadline or 2 * policy.attempt_timeout
        self._tcp_tasks: set[asyncio.Task[None]] = set()

    @property
    def upstreams(self) -> list[Upstream]:
        return [t.upstream for t in self.targets]

    def start(self, exchange: Exchange) -> None:
        now = self.clock()
        up = tuple(t for t in self.targets if t.upstream.is_up(now))
        down = sorted((t for t in self.targets if not t.upstream.is_up(now)), key=_down_until)
        exchange.order = up + tuple(down)
        exchange.ends = now + self._budget
        self._next_attempt(exchange)

    def _next_attempt(self, exchange: Exchange) -> None:
        exchange.attempt += 1
        exchange.token += 1
        if (
            exchange.attempt >= self._attempts
            or not exchange.order
            or (exchange.attempt and self.clock() >= exchange.ends - _SWEEP_INTERVAL)
        ):
            self.complete(exchange, None)
            return
        target = exchange.order[exchange.attempt % len(exchange.order)]
        loop = asyncio.get_running_loop()
        try:
            channel = target.channel(loop)
        except OSError as exc:
            log.debug("cannot open a socket to %s: %s", target.upstream.address, exc)
            target.upstream.record_failure(self.clock())
            self._next_attempt(exchange)
            return
        qid = _random16()
        while qid in channel.pending:
            qid = _random16()
        channel.pending[qid] = exchange
        exchange.channel, exchange.qid = channel, qid
        exchange.sent = self.clock()
        target.upstream.queries += 1
        try:
            channel.sock.send(qid.to_bytes(2, "big") + exchange.message[2:])
        except OSError:
            pass  # a full buffer or an ICMP error: the sweep times this attempt out
        deadline = min(exchange.sent + self.policy.attempt_timeout, exchange.ends)
        self._deadlines.append((deadline, exchange, exchange.token))
        if self._sweeper is None:
            self._sweeper = loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def _readable(self, channel: _Channel) -> None:
        for _ in range(64):  # drain what is queued, but let other sockets have a turn
            try:
                data = channel.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError:
                # ICMP port unreachable and the like: this upstream failed every query here.
                self._fail_channel(channel)
                return
            self._on_datagram(channel, data)

    def _on_datagram(self, channel: _Channel, data: bytes) -> None:
        upstream = channel.target.upstream
        if len(data) < HEADER_LEN or not data[2] & 0x80:
            upstream.mismatched += 1
            return
        exchange = channel.pending.get((data[0] << 8) | data[1])
        if exchange is None or not same_question(data, exchange.question):
            upstream.mismatched += 1  # wrong ID or question: spoofing attempt or a late reply
            return
        del channel.pending[exchange.qid]
        exchange.channel = None
        self._close_if_retired(channel)
        if data[2] & (TC >> 8):
            self._retry_over_tcp(exchange, channel.target, data)
            return
        self._accept(exchange, channel.target, data)

    def _accept(self, exchange: Exchange, target: _Target, data: bytes) -> None:
        upstream = target.upstream
        now = self.clock()
        rcode = data[3] & 0x0F
        if rcode == SERVFAIL or rcode == REFUSED:
            upstream.record_failure(now)
            self._next_attempt(exchange)
            return
        try:
            answer = self.parse(data)
        except WireError:
            upstream.record_failure(now)
            self._next_attempt(exchange)
            return
        upstream.record_success(now - exchange.sent)
        exchange.token += 1  # finished: a late timeout entry is ignored
        self.complete(exchange, answer)

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.clock()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, exchange, token = deadlines.popleft()
            if exchange.token != token:
                continue  # answered, or already moved on
            channel = exchange.channel
            if channel is not None:
                channel.pending.pop(exchange.qid, None)
                exchange.channel = None
                self._close_if_retired(channel)
                channel.target.upstream.record_failure(now)
            self._next_attempt(exchange)
        if deadlines and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(_SWEEP_INTERVAL, self._sweep)

    def _fail_channel(self, channel: _Channel) -> None:
        pending = list(channel.pending.values())
        channel.pending.clear()
        channel.target.upstream.record_failure(self.clock())
        for exchange in pending:
            exchange.channel = None
            self._next_attempt(exchange)

    def _close_if_retired(self, channel: _Channel) -> None:
        if channel.retired and not channel.pending:
            channel.close()

    def _retry_over_tcp(self, exchange: Exchange, target: _Target, udp_reply: bytes) -> None:
        target.upstream.tcp_fallbacks += 1
        exchange.token += 1  # the TCP exchange has its own timeout
        task = asyncio.get_running_loop().create_task(
            self._tcp(exchange, target, udp_reply[0:2] + exchange.message[2:])
        )
        self._tcp_tasks.add(task)
        task.add_done_callback(self._tcp_tasks.discard)

    async def _tcp(self, exchange: Exchange, target: _Target, message: bytes) -> None:
        try:
            reply = await tcp_exchange(
                target.upstream.address, message, exchange.question, self.policy.tcp_timeout
            )
        except (OSError, TimeoutError, WireError, asyncio.IncompleteReadError):
            target.upstream.record_failure(self.clock())
            self._next_attempt(exchange)
            return
        self._accept(exchange, target, reply)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for target in self.targets:
            for channel in target.channels:
                channel.close()
            target.channels.clear()
        for task in self._tcp_tasks:
            task.cancel()


_SWEEP_INTERVAL = 0.05
_RANDOM = bytearray()


def _random16() -> int:
    """16 bits from the OS CSPRNG, read 8 KiB at a time: one os.urandom call per query ID
    (as secrets.randbits makes) cost more than the rest of the ID handling."""
    global _RANDOM
    if len(_RANDOM) < 2:
        _RANDOM = bytearray(os.urandom(8192))
    value = (_RANDOM[-2] << 8) | _RANDOM[-1]
    del _RANDOM[-2:]
    return value  # timeout resolution; attempt timeouts are around a second


def _down_until(target: _Target) -> float:
    return target.upstream.down_until


async def tcp_exchange(
    address: UpstreamAddress, message: bytes, question: bytes, timeout: float
) -> bytes:
    """One query over a fresh TCP connection (RFC 7766), reply checked like a UDP one."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(address.host, address.port)
        try:
            writer.write(len(message).to_bytes(2, "big") + message)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            reply = await reader.readexactly(size)
        finally:
            writer.close()
    if len(reply) < HEADER_LEN or reply[0:2] != message[0:2] or not same_question(reply, question):
        raise WireError(SERVFAIL, None, "TCP reply does not match the query")
    return reply
