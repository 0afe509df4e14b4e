"""Forwarding to upstream resolvers: UDP with TCP fallback, anti-spoofing, health, failover.

Each upstream has a small pool of connected UDP sockets, each on a kernel-chosen random port
and replaced after a bounded number of queries, and every query carries a random ID
(RFC 5452). A reply is accepted only when its ID is pending, it comes from the connected peer
(the kernel filters that) and its question equals the one sent; anything else is dropped and
counted. A truncated reply is retried over TCP (RFC 7766).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import UpstreamError
from .response import question_end, scan_answer
from .synth import opt_record
from .wire import CD, HEADER_LEN, REFUSED, SERVFAIL, TC, WireError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UpstreamAddress:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ForwardPolicy:
    attempt_timeout: float = 1.0  # per upstream attempt
    tcp_timeout: float = 3.0
    attempts: int = 0  # 0: max(2, number of upstreams)
    down_after: int = 3  # consecutive failures that mark an upstream down
    down_for: float = 5.0  # first back-off; doubles per further failure up to ``down_max``
    down_max: float = 60.0
    sockets_per_upstream: int = 4
    queries_per_socket: int = 2_000
    udp_size: int = 1232


class _UdpChannel(asyncio.DatagramProtocol):
    """One connected UDP socket; routes replies to the pending query with the same ID."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self.used = 0
        self.retired = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) < HEADER_LEN or not data[2] & 0x80:
            self.upstream.mismatched += 1
            return
        slot = self.pending.get((data[0] << 8) | data[1])
        if slot is None or slot[0].done():
            self.upstream.mismatched += 1
            return
        future, question = slot
        if not same_question(data, question):
            self.upstream.mismatched += 1  # right ID, wrong question: spoofing or a bug
            return
        future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: every query on this socket has failed.
        for future, _ in self.pending.values():
            if not future.done():
                future.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.error_received(exc or ConnectionError("upstream socket closed"))

    def close_if_idle(self) -> None:
        if self.retired and not self.pending and self.transport is not None:
            self.transport.close()


class Upstream:
    """One upstream server: its sockets, health and counters."""

    def __init__(self, address: UpstreamAddress, policy: ForwardPolicy, clock: Callable[[], float]):
        self.address = address
        self.policy = policy
        self._clock = clock
        self._channels: list[_UdpChannel] = []
        self.failures = 0
        self.down_until = 0.0
        self.queries = 0
        self.errors = 0
        self.mismatched = 0
        self.tcp_fallbacks = 0
        self.latency_sum = 0.0

    def is_up(self, now: float) -> bool:
        return now >= self.down_until

    def record_success(self, rtt: float) -> None:
        self.failures = 0
        self.down_until = 0.0
        self.latency_sum += rtt

    def record_failure(self, now: float) -> None:
        self.errors += 1
        self.failures += 1
        policy = self.policy
        if self.failures >= policy.down_after:
            extra = self.failures - policy.down_after
            self.down_until = now + min(policy.down_max, policy.down_for * (2**extra))

    async def exchange(self, message: bytes, question: bytes) -> bytes:
        """Send ``message`` (ID patched here) over UDP, falling back to TCP on TC=1."""
        self.queries += 1
        reply = await self._exchange_udp(message, question)
        if reply[2] & (TC >> 8):
            self.tcp_fallbacks += 1
            reply = await self._exchange_tcp(reply[0:2] + message[2:], question)
        return reply

    async def _exchange_udp(self, message: bytes, question: bytes) -> bytes:
        channel = await self._channel()
        qid = _new_id(channel.pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        channel.pending[qid] = (future, question)
        try:
            assert channel.transport is not None
            channel.transport.sendto(qid.to_bytes(2, "big") + message[2:])
            return await asyncio.wait_for(future, self.policy.attempt_timeout)
        finally:
            del channel.pending[qid]
            channel.close_if_idle()

    async def _exchange_tcp(self, message: bytes, question: bytes) -> bytes:
        async with asyncio.timeout(self.policy.tcp_timeout):
            reader, writer = await asyncio.open_connection(self.address.host, self.address.port)
            try:
                writer.write(len(message).to_bytes(2, "big") + message)
                await writer.drain()
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = await reader.readexactly(size)
            finally:
                writer.close()
        if reply[0:2] != message[0:2] or not same_question(reply, question):
            self.mismatched += 1
            raise WireError(SERVFAIL, None, "TCP reply does not match the query")
        return reply

    async def _channel(self) -> _UdpChannel:
        live = [c for c in self._channels if not c.retired]
        if len(live) < self.policy.sockets_per_upstream:
            return await self._open_channel()
        channel = live[secrets.randbelow(len(live))]
        channel.used += 1
        if channel.used >= self.policy.queries_per_socket:
            # Retire it so its source port changes; it closes once its last reply is in.
            channel.retired = True
            self._channels = [c for c in self._channels if c is not channel or c.pending]
        return channel

    async def _open_channel(self) -> _UdpChannel:
        loop = asyncio.get_running_loop()
        channel = _UdpChannel(self)
        await loop.create_datagram_endpoint(
            lambda: channel, remote_addr=(self.address.host, self.address.port)
        )
        self._channels = [c for c in self._channels if not (c.retired and not c.pending)]
        self._channels.append(channel)
        return channel

    def close(self) -> None:
        for channel in self._channels:
            if channel.transport is not None:
                channel.transport.close()
        self._channels.clear()


def same_question(reply: bytes, question: bytes) -> bool:
    """Does the reply's question equal ours (name case-insensitively, type and class exactly)?"""
    end = HEADER_LEN + len(question)
    return (
        reply[HEADER_LEN : end - 4].lower() == question[:-4]
        and reply[end - 4 : end] == question[-4:]
    )


def _new_id(pending: Mapping[int, object]) -> int:
    while True:
        qid = secrets.randbits(16)
        if qid not in pending:
            return qid


def build_upstream_query(key: bytes, flags: int, do: bool, udp_size: int) -> bytes:
    """Our query for a cache key: lowercase name, RD set, CD copied, EDNS with DO copied."""
    question = key[:-1]
    header_flags = 0x0100 | (flags & CD)
    return b"".join(
        (
            b"\x00\x00",
            header_flags.to_bytes(2, "big"),
            b"\x00\x01\x00\x00\x00\x00\x00\x01",
            question,
            opt_record(udp_size, 0, do),
        )
    )


class Forwarder:
    """Tries upstreams in order of health, and fails over on timeouts and errors."""

    def __init__(
        self,
        addresses: tuple[UpstreamAddress, ...],
        policy: ForwardPolicy,
        clock: Callable[[], float],
    ) -> None:
        if not addresses:
            raise UpstreamError("no upstream configured")
        self.policy = policy
        self._clock = clock
        self.upstreams = [Upstream(a, policy, clock) for a in addresses]

    def _order(self, now: float) -> list[Upstream]:
        up = [u for u in self.upstreams if u.is_up(now)]
        down = sorted((u for u in self.upstreams if not u.is_up(now)), key=lambda u: u.down_until)
        return up + down

    async def forward(self, message: bytes, question: bytes) -> bytes:
        """An upstream reply (NOERROR or NXDOMAIN, question checked), else UpstreamError."""
        order = self._order(self._clock())
        attempts = self.policy.attempts or max(2, len(order))
        last: BaseException | None = None
        for attempt in range(attempts):
            upstream = order[attempt % len(order)]
            started = self._clock()
            try:
                reply = await upstream.exchange(message, question)
                # Scan the whole reply here, not only its question: a reply that passes the
                # ID and question checks but is garbage after them must fail over to the next
                # upstream, not end as SERVFAIL when the pipeline scans it.
                scan_answer(reply, question_end(reply))
            except (TimeoutError, OSError, WireError, asyncio.IncompleteReadError) as exc:
                upstream.record_failure(self._clock())
                last = exc
                continue
            if reply[3] & 0x0F in (SERVFAIL, REFUSED):
                upstream.record_failure(self._clock())
                last = UpstreamError(f"{upstream.address} answered rcode {reply[3] & 0x0F}")
                continue
            upstream.record_success(self._clock() - started)
            return reply
        raise UpstreamError(f"all upstreams failed: {last!r}")

    def close(self) -> None:
        for upstream in self.upstreams:
            upstream.close()
