"""Tests for resolver/upstream.py and the exchanges forward.Dispatcher drives with it, against
real stub upstreams on loopback: ID and question checks, TCP fallback, failover, health and
back-off, the overall deadline."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterator

import dns.flags
import dns.message
import pytest

from resolver.forward import Dispatcher, Exchange
from resolver.querystate import parse_reply
from resolver.response import ScannedAnswer
from resolver.upstream import (
    ForwardPolicy,
    Upstream,
    UpstreamAddress,
    build_upstream_query,
    same_question,
)
from resolver.wire import CD
from resolver.wire_query import parse_query
from tests.stub_upstream import StubUpstream

FAST = ForwardPolicy(attempt_timeout=0.3, tcp_timeout=1.0)


@pytest.fixture
def stubs() -> Iterator[tuple[StubUpstream, StubUpstream]]:
    with StubUpstream(seed=1) as first, StubUpstream(seed=2) as second:
        yield first, second


def address(stub: StubUpstream) -> UpstreamAddress:
    return UpstreamAddress(stub.host, stub.port)


def message(name: str, rdtype: str = "A", do: bool = False) -> tuple[bytes, bytes]:
    """(upstream query, question) as the pipeline builds them for a client query."""
    client = dns.message.make_query(name, rdtype, use_edns=0, ednsflags=dns.flags.DO if do else 0)
    query = parse_query(client.to_wire())
    return build_upstream_query(query.key, query.flags, query.do, 1232), query.key[:-1]


class UpstreamError(Exception):
    """No upstream gave a usable answer (this test's blocking wrapper around the dispatcher)."""


class Forwarder:
    """Drives a real Dispatcher one exchange at a time and hands back the raw reply."""

    def __init__(
        self, addresses: tuple[UpstreamAddress, ...], policy: ForwardPolicy, clock: object
    ) -> None:
        self.dispatcher = Dispatcher(addresses, policy, clock, self._parse, self._complete)  # type: ignore[arg-type]
        self.upstreams = self.dispatcher.upstreams
        self._raw = b""
        self._done: asyncio.Future[ScannedAnswer | None] | None = None

    def _parse(self, reply: bytes) -> ScannedAnswer:
        answer = parse_reply(reply)  # raises WireError for garbage: the dispatcher fails over
        self._raw = reply
        return answer

    def _complete(self, _exchange: Exchange, answer: ScannedAnswer | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(answer)

    async def forward(self, message: bytes, question: bytes) -> bytes:
        self._done = asyncio.get_running_loop().create_future()
        self.dispatcher.start(Exchange(question + b"\x00", message))
        if await self._done is None:
            raise UpstreamError("all upstreams failed")
        return self._raw

    def close(self) -> None:
        self.dispatcher.close()


def forward(forwarder: Forwarder, name: str, rdtype: str = "A") -> dns.message.Message:
    async def run() -> bytes:
        try:
            return await forwarder.forward(*message(name, rdtype))
        finally:
            forwarder.close()

    return dns.message.from_wire(asyncio.run(run()))


def test_build_upstream_query() -> None:
    client = dns.message.make_query("WWW.Example.test", "AAAA", use_edns=0, ednsflags=dns.flags.DO)
    client.flags = CD  # no RD from the client: we still ask recursively
    query = parse_query(client.to_wire())
    got = dns.message.from_wire(build_upstream_query(query.key, query.flags, query.do, 1232))
    assert got.question[0].name.to_text() == "www.example.test."
    assert got.flags & dns.flags.RD and got.flags & dns.flags.CD
    assert got.edns == 0 and got.payload == 1232 and got.ednsflags & dns.flags.DO


@pytest.mark.parametrize(
    ("reply_question", "ok"),
    [
        (b"\x03WWW\x07example\x04test\x00\x00\x01\x00\x01", True),
        (b"\x03www\x07example\x04test\x00\x00\x1c\x00\x01", False),
        (b"\x03wwx\x07example\x04test\x00\x00\x01\x00\x01", False),
        (b"\x03www\x07example\x04test\x00\x00\x01\x00\x03", False),
        (b"\x03www", False),
    ],
)
def test_same_question(reply_question: bytes, ok: bool) -> None:
    question = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
    assert same_question(b"\x00" * 12 + reply_question, question) is ok


def test_forward_uses_random_ids(stubs: tuple[StubUpstream, StubUpstream]) -> None:
    first, _ = stubs
    forwarder = Forwarder((address(first),), FAST, time.monotonic)

    async def run() -> None:
        for i in range(20):
            await forwarder.forward(*message(f"id{i}.example.test"))
        forwarder.close()

    asyncio.run(run())
    ids = {int.from_bytes(m[:2], "big") for m in first.received}
    assert len(ids) >= 15  # 20 random 16-bit IDs: a collision or two at most


def test_truncated_udp_answer_is_retried_over_tcp(stubs: tuple[StubUpstream, StubUpstream]) -> None:
    first, _ = stubs
    forwarder = Forwarder((address(first),), FAST, time.monotonic)
    got = forward(forwarder, "big.example.test", "TXT")
    assert not got.flags & dns.flags.TC and len(got.answer[0]) == 22
    assert first.by_transport == {"udp": 1, "tcp": 1}
    assert forwarder.upstreams[0].tcp_fallbacks == 1


def test_answer_over_4k_over_tcp(stubs: tuple[StubUpstream, StubUpstream]) -> None:
    first, _ = stubs
    forwarder = Forwarder((address(first),), FAST, time.monotonic)
    got = forward(forwarder, "huge.example.test", "TXT")
    assert len(got.to_wire()) > 4096


@pytest.mark.parametrize(
    "mode",
    [
        "drop",
        "wrong_id",
        "wrong_question",
        "servfail",
        "refused",
        "noise",
        "garbage",
        "truncated_bytes",
    ],
)
def test_fails_over_to_the_second_upstream(
    stubs: tuple[StubUpstream, StubUpstream], mode: str
) -> None:
    first, second = stubs
    first.mode = mode
    forwarder = Forwarder((address(first), address(second)), FAST, time.monotonic)
    started = time.monotonic()
    got = forward(forwarder, "www.example.test")
    assert got.answer[0][0].to_text() == "192.0.2.1"
    assert time.monotonic() - started < 1.0
    assert first.count("www.example.test") == 1 and second.count("www.example.test") == 1
    assert forwarder.upstreams[0].errors == 1
    if mode in ("wrong_id", "wrong_question"):
        assert forwarder.upstreams[0].mismatched == 1


def test_all_failing_raises_upstream_error_quickly(
    stubs: tuple[StubUpstream, StubUpstream],
) -> None:
    first, second = stubs
    first.mode = second.mode = "drop"
    forwarder = Forwarder((address(first), address(second)), FAST, time.monotonic)
    started = time.monotonic()
    with pytest.raises(UpstreamError):
        forward(forwarder, "www.example.test")
    assert time.monotonic() - started < 2 * FAST.attempt_timeout + 0.5


def test_closed_port_fails_fast() -> None:
    with StubUpstream() as stub:
        dead = address(stub)
    forwarder = Forwarder((dead,), ForwardPolicy(attempt_timeout=5.0), time.monotonic)
    started = time.monotonic()
    with pytest.raises(UpstreamError):
        forward(forwarder, "www.example.test")
    assert time.monotonic() - started < 2.0  # ICMP port unreachable, not the 5 s timeout


def test_slow_upstream_times_out_and_its_late_reply_finds_no_socket(
    stubs: tuple[StubUpstream, StubUpstream],
) -> None:
    first, second = stubs
    first.mode, first.delay = "slow", 0.5
    forwarder = Forwarder((address(first), address(second)), FAST, time.monotonic)

    async def run() -> bytes:
        reply = await forwarder.forward(*message("www.example.test"))
        await asyncio.sleep(0.4)  # the slow reply arrives now and must be dropped quietly
        forwarder.close()
        return reply

    assert dns.message.from_wire(asyncio.run(run())).answer
    # The attempt's socket closed at its timeout: the late reply is refused by the kernel,
    # never read, so it can neither be believed nor counted as a mismatch.
    assert forwarder.upstreams[0].errors == 1 and forwarder.upstreams[0].mismatched == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_backoff_doubles_and_is_capped() -> None:
    clock = FakeClock()
    policy = ForwardPolicy(down_after=3, down_for=5.0, down_max=30.0)
    upstream = Upstream(UpstreamAddress("127.0.0.1", 1), policy, clock)
    for _ in range(2):
        upstream.record_failure(clock.now)
    assert upstream.is_up(clock.now)
    expected = [5.0, 10.0, 20.0, 30.0, 30.0]
    for wait in expected:
        upstream.record_failure(clock.now)
        assert upstream.down_until == clock.now + wait
    upstream.record_success(0.01)
    assert upstream.is_up(clock.now) and upstream.failures == 0


def test_down_upstream_is_tried_last(stubs: tuple[StubUpstream, StubUpstream]) -> None:
    first, second = stubs
    clock = FakeClock()
    forwarder = Forwarder((address(first), address(second)), FAST, clock)
    for _ in range(3):
        forwarder.upstreams[0].record_failure(clock.now)
    assert not forwarder.upstreams[0].is_up(clock.now)
    forward(forwarder, "www.example.test")
    assert first.count("www.example.test") == 0 and second.count("www.example.test") == 1


def test_no_upstreams_fails_the_exchange() -> None:
    # Config refuses an empty upstream list; the dispatcher still fails cleanly, not by raising.
    with pytest.raises(UpstreamError):
        forward(Forwarder((), FAST, time.monotonic), "www.example.test")


def test_overall_deadline_caps_many_dead_upstreams() -> None:
    stubs = [StubUpstream(seed=n) for n in (11, 12, 13, 14)]
    for stub in stubs:
        stub.__enter__()
        stub.mode = "drop"
    try:
        addresses = tuple(address(stub) for stub in stubs)
        forwarder = Forwarder(addresses, FAST, time.monotonic)  # 4 attempts of 0.3 s, budget 0.6
        started = time.monotonic()
        with pytest.raises(UpstreamError):
            forward(forwarder, "www.example.test")
        assert time.monotonic() - started < 2 * FAST.attempt_timeout + 0.3
        assert sum(stub.count("www.example.test") for stub in stubs) == 2
    finally:
        for stub in stubs:
            stub.__exit__(None, None, None)


def test_failures_are_reported_at_most_once_per_interval_with_their_count() -> None:
    clock = FakeClock()
    upstream = Upstream(UpstreamAddress("127.0.0.1", 1), ForwardPolicy(report_every=60.0), clock)
    assert upstream.record_failure(clock.now, "timeout") == 1  # the first is reported at once
    assert [upstream.record_failure(clock.now + s, "timeout") for s in (1, 30, 59)] == [0, 0, 0]
    assert upstream.record_failure(clock.now + 61, "network") == 4  # three held back, and this


def test_a_lost_letter_case_turns_0x20_off_once() -> None:
    upstream = Upstream(UpstreamAddress("127.0.0.1", 1), ForwardPolicy(), FakeClock())
    assert upstream.caps
    assert upstream.case_lost() is True and not upstream.caps
    assert upstream.case_lost() is False  # already off: nothing to retry differently
    off = Upstream(
        UpstreamAddress("127.0.0.1", 1), ForwardPolicy(case_randomization=False), FakeClock()
    )
    assert not off.caps and off.case_lost() is False


def test_an_answered_exchange_is_freed_at_once_not_at_its_timeout(
    stubs: tuple[StubUpstream, StubUpstream],
) -> None:
    """The timeout queue names exchanges by number: what waited for an answer (queries,
    callbacks) must not stay alive for the attempt timeout, a second of every miss kept
    for the collector to scan (benchmarks/README.md, the tail)."""

    class Waiting:
        pass

    policy = ForwardPolicy(attempt_timeout=5.0)
    forwarder = Forwarder((address(stubs[0]),), policy, time.monotonic)

    async def run() -> weakref.ref[Waiting]:
        waiting = Waiting()
        probe = weakref.ref(waiting)
        forwarder._done = asyncio.get_running_loop().create_future()
        exchange = Exchange(
            message("www.example.test")[1] + b"\x00", message("www.example.test")[0]
        )
        exchange.waiters.append(waiting)
        forwarder.dispatcher.start(exchange)
        del exchange, waiting
        assert await forwarder._done is not None
        return probe

    try:
        probe = asyncio.run(run())
        assert probe() is None and len(forwarder.dispatcher._deadlines) == 1
    finally:
        forwarder.close()
