"""The cache-miss engine: upstream exchanges driven by socket callbacks, not coroutines.

A coroutine, a task and ``wait_for`` per miss cost more than the rest of the miss together,
so an ``Exchange`` is a small state object moved along by three events: a reply arriving on
an attempt's UDP socket, the timeout sweep, and (rarely) a TCP retry for a truncated reply.
Identical concurrent misses share one Exchange (coalescing); failover, health and
anti-spoofing checks follow upstream.py's rules (RFC 5452).

Every attempt has its own connected socket on a fresh random port, with a random ID and 0x20
letter case, closed as soon as the attempt ends (reply, timeout or ICMP error), so no
descriptor outlives its query and a late or forged reply finds no socket to land on. The
sockets live in one epoll set (spoofing.attempt_sockets, resolver/_upsock.c) that the event
loop watches as one descriptor: a socket object, two selector registrations and the random
draws in Python were a quarter of a miss's CPU. Every datagram read comes back here to be
checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ._nametable import untrack
from .response import ScannedAnswer
from .spoofing import attempt_sockets, pack_address
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
        "asked",
        "waiters",
        "attempt",
        "token",
        "order",
        "channel",
        "qid",
        "sent",
        "ends",
        "serial",
    )

    def __init__(self, key: bytes, message: bytes) -> None:
        self.key = key
        self.message = message  # our query; its ID (and with 0x20 its name) set per attempt
        self.question = key[:-1]  # lowercase qname + qtype + qclass, to check replies
        self.asked = self.question  # the question as last sent, letter case included
        self.waiters: list[Any] = []  # owned by the caller (query, deliver ...)
        self.attempt = -1  # index of the current try in ``order``
        self.token = 0  # bumped whenever a pending timeout must no longer apply
        self.order: tuple[_Target, ...] = ()
        self.channel: _Channel | None = None
        self.qid = 0
        self.sent = 0.0
        self.ends = 0.0  # the exchange's overall deadline
        self.serial = 0  # its key in Dispatcher._live while unfinished


class _Channel:
    """One attempt: its socket's descriptor in the dispatcher's set (-1 once ended)."""

    __slots__ = ("target", "fd", "exchange")

    def __init__(self, target: _Target, exchange: Exchange) -> None:
        self.target = target
        self.exchange: Exchange | None = exchange
        self.fd = -1


class _Target:
    """One upstream's health record, counters' label and packed socket address."""

    __slots__ = ("upstream", "sockaddr", "label")

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        address = upstream.address
        try:
            self.sockaddr = pack_address(address.host, address.port)
        except OSError:
            self.sockaddr = b""  # not an IP address (config refuses it): attempts fail
        self.label = str(address)  # the metrics label (stats.LabelSets.upstreams)


class Dispatcher:
    """Sends exchanges to upstreams in health order and reports each outcome once.

    ``parse(reply)`` turns a reply into a ScannedAnswer or raises WireError (then the next
    upstream is tried); ``complete(exchange, answer_or_None)`` receives the outcome.
    ``stats`` (the process's Stats), when given, gets the upstream counters.
    """

    def __init__(
        self,
        addresses: tuple[UpstreamAddress, ...],
        policy: ForwardPolicy,
        clock: Callable[[], float],
        parse: Callable[[bytes], ScannedAnswer],
        complete: Callable[[Exchange, ScannedAnswer | None], None],
        stats: Any = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.parse = parse
        self.complete = complete
        self.stats = stats
        self.targets = [_Target(Upstream(a, policy, clock)) for a in addresses]
        self._all_targets = tuple(self.targets)
        self.sockets = attempt_sockets()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one watching self.sockets
        # (deadline, serial, token): attempts share one timeout, so this stays sorted. The
        # entry names the exchange by number, not by reference: an answered exchange (its
        # waiters, queries and callbacks) is freed at once instead of living on here until
        # its timeout, and the entry, a tuple of numbers, is left alone by the collector.
        # Holding them for the attempt timeout kept ~8 objects per miss alive for a second,
        # which made the young collections scan tens of thousands of them (benchmarks/README.md).
        self._deadlines: deque[tuple[float, int, int]] = deque()
        self._live: dict[int, Exchange] = {}  # unfinished exchanges by serial
        self._serial = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._attempts = policy.attempts or max(2, len(self.targets))
        self._budget = policy.deadline or 2 * policy.attempt_timeout
        self._tcp_tasks: set[asyncio.Task[None]] = set()

    @property
    def upstreams(self) -> list[Upstream]:
        return [t.upstream for t in self.targets]

    def start(self, exchange: Exchange) -> None:
        now = self.clock()
        exchange.order = self._order(now)
        exchange.ends = now + self._budget
        self._serial += 1
        exchange.serial = self._serial
        self._live[self._serial] = exchange
        self._next_attempt(exchange)

    def _order(self, now: float) -> tuple[_Target, ...]:
        """Upstreams that are up in configured order, then those down, soonest back first."""
        for target in self.targets:
            if not target.upstream.is_up(now):
                break
        else:
            return self._all_targets  # the usual case, without building anything
        up = tuple(t for t in self.targets if t.upstream.is_up(now))
        down = sorted((t for t in self.targets if not t.upstream.is_up(now)), key=_down_until)
        return up + tuple(down)

    def _next_attempt(self, exchange: Exchange) -> None:
        exchange.attempt += 1
        exchange.token += 1
        if (
            exchange.attempt >= self._attempts
            or not exchange.order
            or (exchange.attempt and self.clock() >= exchange.ends - _SWEEP_INTERVAL)
        ):
            self._finish(exchange, None)
            return
        self._send(exchange, exchange.order[exchange.attempt % len(exchange.order)])

    def _send(self, exchange: Exchange, target: _Target) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            # Not asyncio.get_running_loop() per send: on Python 3.11 that is a getpid()
            # system call each time (a fork check), one more per miss. The loop watching
            # the set is the running one while it runs; otherwise another has replaced it.
            loop = asyncio.get_running_loop()
            self._watch(loop)
        channel = _Channel(target, exchange)
        upstream = target.upstream
        try:
            channel.fd, exchange.qid, exchange.asked = self.sockets.open(
                channel, target.sockaddr, exchange.message, len(exchange.question), upstream.caps
            )
        except OSError as exc:
            log.debug("cannot open a socket to %s: %s", upstream.address, exc)
            self._failed(target, "network")
            self._next_attempt(exchange)
            return
        exchange.channel = channel
        exchange.sent = self.clock()
        upstream.queries += 1
        deadline = min(exchange.sent + self.policy.attempt_timeout, exchange.ends)
        entry = (deadline, exchange.serial, exchange.token)
        # Out of the collector's lists (numbers only): the queue replaces about as many as it
        # adds, so its ~1 s of entries (15,000 at full load) piled up for one young collection.
        untrack(entry)
        self._deadlines.append(entry)
        if self._sweeper is None:
            self._sweeper = loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """One reader for every attempt's socket: the set's descriptor is readable while any
        socket in it is (a first send, or the first after a loop was replaced or closed)."""
        self._unwatch()
        loop.add_reader(self.sockets.fileno(), self._readable)
        self._loop = loop
        if self._sweeper is not None:  # a timer of the old loop would never fire
            self._sweeper.cancel()
            self._sweeper = None

    def _unwatch(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sockets.fileno())
        self._loop = None

    def _readable(self) -> None:
        # One datagram (or error) per ready socket; a socket with more is ready again next
        # time round, so forged replies flooding one socket are read a few per loop pass.
        for channel, data in self.sockets.drain():
            if channel.fd < 0:
                continue  # its attempt ended earlier in this batch
            if data.__class__ is int:
                # ICMP port unreachable and the like: this attempt failed; the socket goes.
                self._end_attempt(channel, "network")
            else:
                self._on_datagram(channel, data)

    def _on_datagram(self, channel: _Channel, data: bytes) -> None:
        exchange = channel.exchange
        target = channel.target
        if (
            exchange is None
            or len(data) < HEADER_LEN
            or not data[2] & 0x80
            or (data[0] << 8) | data[1] != exchange.qid
        ):
            self._mismatched(target)  # wrong ID or not a reply: spoofing, or a confused server
            return
        if data[HEADER_LEN : HEADER_LEN + len(exchange.asked)] != exchange.asked:
            self._mismatched(target)
            if same_question(data, exchange.question) and target.upstream.case_lost():
                # The right question in the wrong letter case, from an upstream that does
                # not keep it: ask again at once without 0x20 (it is now off for this one).
                self._close(channel)
                exchange.token += 1
                self._send(exchange, target)
            return
        self._close(channel)
        if data[2] & (TC >> 8):
            self._retry_over_tcp(exchange, target, data)
            return
        self._accept(exchange, target, data)

    def _accept(self, exchange: Exchange, target: _Target, data: bytes) -> None:
        upstream = target.upstream
        now = self.clock()
        rcode = data[3] & 0x0F
        if rcode == SERVFAIL or rcode == REFUSED:
            self._failed(target, "servfail" if rcode == SERVFAIL else "refused")
            self._next_attempt(exchange)
            return
        try:
            answer = self.parse(data)
        except WireError:
            self._failed(target, "malformed")
            self._next_attempt(exchange)
            return
        upstream.record_success(now - exchange.sent)
        if self.stats is not None:
            self.stats.record_upstream(target.label, now - exchange.sent)
        exchange.token += 1  # finished: a late timeout entry is ignored
        self._finish(exchange, answer)

    def _finish(self, exchange: Exchange, answer: ScannedAnswer | None) -> None:
        self._live.pop(exchange.serial, None)
        self.complete(exchange, answer)

    def _failed(self, target: _Target, reason: str) -> None:
        """Count one failed attempt (reason from stats.UPSTREAM_FAILURE_REASONS), and say
        so in the log at most once a minute per upstream."""
        upstream = target.upstream
        due = upstream.record_failure(self.clock(), reason)
        stats = self.stats
        if stats is not None:
            stats.record_upstream_failure(target.label, reason)
            stats.upstream_queries[target.label] = stats.upstream_queries.get(target.label, 0) + 1
        if due:
            log.warning(
                "upstream %s failing: %s (%d failed attempts since the last report)",
                upstream.address,
                reason,
                due,
            )

    def _mismatched(self, target: _Target) -> None:
        target.upstream.mismatched += 1
        if self.stats is not None:
            counts = self.stats.upstream_mismatched
            counts[target.label] = counts.get(target.label, 0) + 1

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.clock()
        deadlines, live = self._deadlines, self._live
        while deadlines and deadlines[0][0] <= now:
            _, serial, token = deadlines.popleft()
            exchange = live.get(serial)
            if exchange is None or exchange.token != token:
                continue  # answered, or already moved on
            channel = exchange.channel
            if channel is not None:
                self._end_attempt(channel, "timeout")
            else:
                self._next_attempt(exchange)
        if deadlines and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(_SWEEP_INTERVAL, self._sweep)

    def _end_attempt(self, channel: _Channel, reason: str) -> None:
        exchange = channel.exchange
        target = channel.target
        self._close(channel)
        self._failed(target, reason)
        if exchange is not None:
            self._next_attempt(exchange)

    def _close(self, channel: _Channel) -> None:
        exchange = channel.exchange
        if exchange is not None and exchange.channel is channel:
            exchange.channel = None
        if channel.fd >= 0:
            self.sockets.close(channel.fd)
            channel.fd = -1
            channel.exchange = None

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
        except (OSError, TimeoutError, WireError, asyncio.IncompleteReadError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "network"
            self._failed(target, "malformed" if isinstance(exc, WireError) else reason)
            self._next_attempt(exchange)
            return
        self._accept(exchange, target, reply)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._unwatch()
        self.sockets.shutdown()  # every attempt's socket, and the set itself
        self._live.clear()
        self._deadlines.clear()
        for task in self._tcp_tasks:
            task.cancel()


_SWEEP_INTERVAL = 0.05  # timeout resolution; attempt timeouts are around a second


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
