"""Upstream faults (issue 7): down, black hole, slow, garbage, wrong ID or question, truncated,
oversized, flapping. lachan stays up, fails over, answers SERVFAIL quickly when nothing works,
serves stale when configured, and recovers without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.conftest import LachanFactory
from tests.stub_upstream import LachanProcess, StubUpstream

# Default upstream timeout is 1 s per attempt and 2 attempts (max(2, upstreams)): SERVFAIL
# must come within about 2 s; 3 s leaves room for a loaded CI machine.
SERVFAIL_BOUND = 3.0


def ask(
    server: LachanProcess, name: str, rdtype: str = "A", tcp: bool = False
) -> tuple[dns.message.Message, float]:
    query = dns.message.make_query(name, rdtype)
    started = time.monotonic()
    if tcp:
        reply = dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=6)
    else:
        reply = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=6)
    return reply, time.monotonic() - started


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StubUpstream, StubUpstream, LachanProcess]]:
    """Two stubs and one lachan forwarding to both (primary first)."""
    with StubUpstream(seed=3) as primary, StubUpstream(seed=4) as secondary:
        server = LachanProcess(
            tmp_path_factory.mktemp("faults"), [primary.address, secondary.address]
        ).start()
        yield primary, secondary, server
        assert server.alive(), server.stderr()
        server.stop()
        server.assert_clean_log()


@pytest.mark.parametrize(
    ("mode", "bound"),
    [
        ("drop", 2.5),
        ("slow", 2.5),
        ("wrong_id", 2.5),
        ("wrong_question", 2.5),
        ("garbage", 1.0),
        ("noise", 2.5),
        ("truncated_bytes", 1.0),
        ("servfail", 1.0),
        ("refused", 1.0),
    ],
)
def test_fails_over_to_the_healthy_upstream(
    pair: tuple[StubUpstream, StubUpstream, LachanProcess], mode: str, bound: float
) -> None:
    primary, secondary, server = pair
    primary.mode, primary.delay = mode, 3.0
    try:
        for i in range(3):
            reply, took = ask(server, f"failover-{mode}-{i}.example.test")
            assert (
                reply.rcode() == dns.rcode.NOERROR and reply.answer[0][0].to_text() == "192.0.2.1"
            )
            assert took < bound, f"{mode}: {took:.2f}s"
    finally:
        primary.mode = "normal"
    assert secondary.count(f"failover-{mode}-0.example.test") == 1


def test_truncated_upstream_answers_are_retried_over_tcp(
    pair: tuple[StubUpstream, StubUpstream, LachanProcess],
) -> None:
    primary, secondary, server = pair
    primary.mode = secondary.mode = "tc_always"
    try:
        reply, _ = ask(server, "tcretry.example.test")
        assert reply.answer[0][0].to_text() == "192.0.2.1" and not reply.flags & dns.flags.TC
    finally:
        primary.mode = secondary.mode = "normal"
    assert primary.by_transport["tcp"] + secondary.by_transport["tcp"] >= 1


def test_answer_over_4k_over_tcp_and_tc_over_udp(
    pair: tuple[StubUpstream, StubUpstream, LachanProcess],
) -> None:
    _, _, server = pair
    reply, _ = ask(server, "huge.example.test", "TXT", tcp=True)
    assert len(reply.to_wire()) > 4096
    udp, _ = ask(server, "huge.example.test", "TXT")
    assert udp.flags & dns.flags.TC and not udp.answer


def test_flapping_primary_never_costs_an_answer(
    pair: tuple[StubUpstream, StubUpstream, LachanProcess],
) -> None:
    primary, _, server = pair
    primary.mode, primary.flap_period = "flap", 0.3
    try:
        deadline = time.monotonic() + 2.0
        i = 0
        while time.monotonic() < deadline and i < 200:
            reply, _ = ask(server, f"flap{i}.example.test")
            assert reply.rcode() == dns.rcode.NOERROR
            i += 1
    finally:
        primary.mode = "normal"
    assert i >= 3


def test_servfail_quickly_when_nothing_works_then_recovery(
    lachan: LachanFactory, stub: StubUpstream
) -> None:
    server = lachan()
    stub.mode = "drop"
    for i in range(3):
        reply, took = ask(server, f"dead{i}.example.test")
        assert reply.rcode() == dns.rcode.SERVFAIL  # never NXDOMAIN for upstream trouble
        assert took < SERVFAIL_BOUND, f"SERVFAIL took {took:.2f}s"
    stub.mode = "normal"
    reply, took = ask(server, "alive.example.test")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer


def test_upstream_down_then_back_on_the_same_port(lachan: LachanFactory, tmp_path: Path) -> None:
    with StubUpstream() as first:
        port = first.port
        server = lachan(upstreams=[first.address])
        assert ask(server, "before.example.test")[0].answer
    # Nothing listens now: ICMP port unreachable makes this fast, not a timeout.
    reply, took = ask(server, "during.example.test")
    assert reply.rcode() == dns.rcode.SERVFAIL and took < SERVFAIL_BOUND
    assert ask(server, "before.example.test")[0].answer  # the cache still serves
    with StubUpstream(port=port):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply, _ = ask(server, "after.example.test")
            if reply.rcode() == dns.rcode.NOERROR:
                break
            time.sleep(0.2)
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer, "no recovery without restart"


def test_serve_stale_when_the_upstream_dies(lachan: LachanFactory, stub: StubUpstream) -> None:
    server = lachan(config="cache: {serve_stale: true}\n")
    fresh, _ = ask(server, "short.example.test")
    assert fresh.answer[0].ttl == 1
    stub.mode = "drop"
    time.sleep(1.2)  # past the TTL
    reply, took = ask(server, "short.example.test")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer[0][0].to_text() == "192.0.2.9" and reply.answer[0].ttl == 30  # RFC 8767
    assert took < SERVFAIL_BOUND
    missing, _ = ask(server, "never-cached.example.test")
    assert missing.rcode() == dns.rcode.SERVFAIL
    stub.mode = "normal"
    time.sleep(0.1)
    again, _ = ask(server, "short.example.test")
    assert again.answer[0].ttl == 1  # fresh again after recovery


def test_no_stale_without_serve_stale(lachan: LachanFactory, stub: StubUpstream) -> None:
    server = lachan(config="cache: {serve_stale: false}\n")
    ask(server, "short.example.test")
    stub.mode = "drop"
    time.sleep(1.2)
    assert ask(server, "short.example.test")[0].rcode() == dns.rcode.SERVFAIL


def test_servfail_bound_holds_with_three_dead_upstreams(lachan: LachanFactory) -> None:
    with StubUpstream(seed=5) as a, StubUpstream(seed=6) as b, StubUpstream(seed=8) as c:
        for stub in (a, b, c):
            stub.mode = "drop"
        server = lachan(upstreams=[a.address, b.address, c.address])
        worst = 0.0
        for i in range(3):
            reply, took = ask(server, f"three-dead{i}.example.test")
            assert reply.rcode() == dns.rcode.SERVFAIL
            worst = max(worst, took)
        assert worst < SERVFAIL_BOUND, f"SERVFAIL took {worst:.2f}s"


def test_sigterm_drains_inflight_queries_and_exits_zero(
    lachan: LachanFactory, stub: StubUpstream
) -> None:
    import socket

    server = lachan()
    stub.mode, stub.delay = "slow", 0.8
    query = dns.message.make_query("draining.example.test", "A")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        data = query.to_wire()
        sock.sendall(len(data).to_bytes(2, "big") + data)
        time.sleep(0.2)
        assert server.stop() == 0
        size = int.from_bytes(sock.recv(2), "big")
        reply = dns.message.from_wire(sock.recv(size))
    assert reply.id == query.id and reply.answer  # answered during the graceful drain
    server.assert_clean_log()
