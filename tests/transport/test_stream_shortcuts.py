"""Prepared answers (memo, fast path for list blocks) over TCP, through ``Resolver.respond``.

A real TcpConnection on a recording transport, the bundled lists and the shipped under16
profile, and the real stub upstream: every shortcut answer must be the bytes the pipeline
builds for that query over TCP, counted under TCP, and an answer UDP had to truncate must
never be resent over a stream (nor a stream's big answer over UDP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import TCP, UDP, Miss, Resolver
from resolver.state import build_state
from resolver.stats import Stats
from resolver.transport.tcp import TcpConnection, TcpPolicy, TcpServerState, tcp_limiter
from tests.stub_upstream import StubUpstream

POLICIES = Path(__file__).resolve().parents[2] / "policies"
PEER, LISTENER = ("127.0.0.1", 40000), ("127.0.0.1", 53)


class Recorder:
    """A TCP transport that keeps what is written."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str) -> object:
        return PEER if name == "peername" else LISTENER

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[StubUpstream]:
    with StubUpstream() as server:
        yield server


@pytest.fixture
def resolver(stub: StubUpstream) -> Resolver:
    text = (
        f"upstreams: ['{stub.address}']\n"
        f"policies: {{dir: '{POLICIES}'}}\nclients: {{default: under16}}\n"
    )
    cfg = config.parse(text, "streams.yaml")
    return build_resolver(cfg, build_state(cfg), Stats())


def query(name: str, rdtype: str = "A", qid: int = 7, **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, id=qid, **kw).to_wire()  # type: ignore[arg-type]


def spy(resolver: Resolver) -> list[bytes]:
    """The packets that reach the general pipeline (Resolver.answer) from now on."""
    calls: list[bytes] = []
    general = resolver.answer
    resolver.answer = lambda data, *rest: calls.append(data) or general(data, *rest)  # type: ignore[method-assign]
    return calls


def reference(resolver: Resolver, data: bytes, transport: int = TCP) -> bytes:
    """The pipeline's own answer: a client with neither prepared answers nor fast path."""
    client = resolver.client(resolver.client_table(), PEER[0], LISTENER)
    client.memo, client.fast = None, None
    answer = resolver.answer(data, client, PEER[0], transport)
    assert isinstance(answer, bytes)
    return answer


def over_tcp(resolver: Resolver, *packets: bytes) -> list[bytes]:
    """Send the packets pipelined on one connection; the answers, unframed, once all came."""

    async def main() -> list[bytes]:
        state = TcpServerState(TcpPolicy(), tcp_limiter(None), resolver.stats)
        connection, transport = TcpConnection(resolver, state, LISTENER), Recorder()
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
        for _ in range(300):
            if len(transport.written) == len(packets):
                break
            await asyncio.sleep(0.01)
        connection.connection_lost(None)
        resolver.close()
        return [frame[2:] for frame in transport.written]

    return asyncio.run(main())


def over_udp(resolver: Resolver, data: bytes) -> bytes:
    client = resolver.client(resolver.client_table(), PEER[0], LISTENER)
    result = resolver.respond(data, client, PEER[0], UDP)
    if isinstance(result, Miss):

        async def miss() -> bytes | None:
            try:
                return await resolver.resolve(result, UDP)
            finally:
                resolver.close()

        result = asyncio.run(miss())
    assert isinstance(result, bytes)
    return result


def test_a_list_block_over_tcp_is_the_pipelines_bytes_without_the_pipeline(
    resolver: Resolver,
) -> None:
    calls = spy(resolver)
    blocked = [query("pornhub.com"), query("cdn.pornhub.com", "AAAA", qid=9, use_edns=0)]
    answers = over_tcp(resolver, *blocked)
    assert calls == []
    stats = resolver.stats  # counted as TCP queries and answers, none as UDP
    assert sum(stats.queries[TCP]) == 2 and sum(stats.queries[UDP]) == 0
    assert sum(stats.durations[TCP]) == 2 and sum(stats.durations[UDP]) == 0
    assert stats.answers == {("blocked", "adult", "under16"): 2}
    assert answers == [reference(resolver, p) for p in blocked]
    assert dns.message.from_wire(answers[0]).rcode() == dns.rcode.NXDOMAIN


def test_a_cache_hit_over_tcp_comes_from_the_memo(resolver: Resolver, stub: StubUpstream) -> None:
    first, second = query("www.example.test", qid=1), query("www.example.test", qid=2)
    miss, hit = over_tcp(resolver, first)[0], over_tcp(resolver, first)[0]
    calls = spy(resolver)
    again = over_tcp(resolver, second)[0]
    assert calls == [] and stub.count("www.example.test") == 1
    assert dns.message.from_wire(again).id == 2 and again[2:] == hit[2:]
    assert dns.message.from_wire(miss).answer == dns.message.from_wire(again).answer
    assert resolver.stats.cache_hits == 2  # the memo's resend counts as a hit too


def test_a_udp_truncated_answer_is_not_resent_over_tcp(
    resolver: Resolver, stub: StubUpstream
) -> None:
    big = query("big.example.test", "TXT", use_edns=0)
    over_tcp(resolver, big)  # cached (it comes over TCP from the upstream too)
    udp = dns.message.from_wire(over_udp(resolver, big))
    udp_again = dns.message.from_wire(over_udp(resolver, big))
    assert udp.flags & dns.flags.TC and udp_again.flags & dns.flags.TC
    tcp = dns.message.from_wire(over_tcp(resolver, big)[0])
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 22


def test_a_streams_big_answer_is_not_kept_for_udp(resolver: Resolver) -> None:
    big = query("big.example.test", "TXT", use_edns=0)
    over_tcp(resolver, big)
    over_tcp(resolver, big)  # a hit over TCP: too big for UDP, so not kept
    udp = dns.message.from_wire(over_udp(resolver, big))
    assert udp.flags & dns.flags.TC and not udp.answer
