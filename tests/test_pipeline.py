"""Tests for resolver/pipeline.py: synchronous stages, cache hits, coalescing, SERVFAIL and
serve-stale, with a fake clock and the real stub upstream on loopback."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import TCP, UDP, Miss, Resolver
from resolver.state import build_state
from resolver.stats import Stats
from tests.stub_upstream import StubUpstream


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def upstream() -> Iterator[StubUpstream]:
    with StubUpstream() as stub:
        yield stub


@pytest.fixture
def make(upstream: StubUpstream) -> Callable[..., tuple[Resolver, StubUpstream, FakeClock]]:
    def build(**cache_policy: int) -> tuple[Resolver, StubUpstream, FakeClock]:
        clock = FakeClock()
        cache = "".join(f"  {k}: {v}\n" for k, v in cache_policy.items())
        text = f"upstreams: ['{upstream.address}']\nupstream: {{timeout: 0.2}}\n"
        if "stale_window" in cache_policy:
            cache += "  serve_stale: true\n"
        if cache_policy.get("capacity"):
            cache = cache.replace("capacity", "size")
        cfg = config.parse(text + ("cache:\n" + cache if cache else ""), "test.yaml")
        return build_resolver(cfg, build_state(cfg), Stats(), clock), upstream, clock

    return build


T = TypeVar("T")
Make = Callable[..., tuple[Resolver, StubUpstream, FakeClock]]


def wire(name: str = "www.example.test", rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()  # type: ignore[arg-type]


def run_in(resolver: Resolver, coroutine: Awaitable[T]) -> T:
    """Run with the resolver's sockets closed after (they belong to this loop)."""

    async def main() -> T:
        try:
            return await coroutine
        finally:
            resolver.close()

    return asyncio.run(main())


LISTENER = ("127.0.0.1", 53)


def answer(resolver: Resolver, data: bytes, udp: bool = True) -> bytes | Miss | None:
    client = resolver.client(resolver.client_table(), "127.0.0.1", LISTENER)
    return resolver.answer(data, client, "127.0.0.1", UDP if udp else TCP)


def ask(resolver: Resolver, data: bytes, udp: bool = True) -> dns.message.Message:
    result = answer(resolver, data, udp)
    if isinstance(result, Miss):
        result = run_in(resolver, resolver.resolve(result, UDP if udp else TCP))
    assert isinstance(result, bytes)
    return dns.message.from_wire(result)


def test_miss_then_hit_with_countdown(make: Make) -> None:
    resolver, stub, clock = make()
    assert isinstance(answer(resolver, wire()), Miss)
    first = ask(resolver, wire())
    assert first.answer[0].ttl == 300 and stub.count("www.example.test") == 1
    clock.now += 7.5
    hit = answer(resolver, wire())
    assert isinstance(hit, bytes)
    assert dns.message.from_wire(hit).answer[0].ttl == 293 and stub.count("www.example.test") == 1


def test_hit_echoes_the_new_query_id_and_case(make: Make) -> None:
    resolver, _, _ = make()
    ask(resolver, wire())
    msg = dns.message.make_query("WWW.example.TEST", "A")
    got = ask(resolver, msg.to_wire())
    assert got.id == msg.id and got.question[0].name.to_text() == "WWW.example.TEST."


def test_do_and_cd_are_separate_cache_entries(make: Make) -> None:
    resolver, stub, _ = make()
    ask(resolver, wire())
    ask(resolver, wire(use_edns=0, ednsflags=dns.flags.DO))
    cd = dns.message.make_query("www.example.test", "A")
    cd.flags |= dns.flags.CD
    ask(resolver, cd.to_wire())
    assert stub.count("www.example.test") == 3


def test_concurrent_identical_misses_are_coalesced(make: Make) -> None:
    resolver, stub, _ = make()
    stub.mode, stub.delay = "slow", 0.05

    async def main() -> list[bytes]:
        queries = [answer(resolver, wire()) for _ in range(20)]
        assert all(isinstance(q, Miss) for q in queries)
        return await asyncio.gather(*(resolver.resolve(q, UDP) for q in queries))  # type: ignore[arg-type]

    answers = run_in(resolver, main())
    assert stub.count("www.example.test") == 1
    assert {dns.message.from_wire(a).answer[0][0].to_text() for a in answers} == {"192.0.2.1"}


def test_all_upstreams_failing_is_servfail_never_nxdomain(make: Make) -> None:
    resolver, stub, _ = make()
    stub.mode = "servfail"
    got = ask(resolver, wire(use_edns=0))
    assert got.rcode() == dns.rcode.SERVFAIL and got.question and got.edns == 0


def test_coalesced_failure_reaches_every_waiter(make: Make) -> None:
    resolver, stub, _ = make()
    stub.mode = "servfail"

    async def main() -> list[bytes]:
        queries = [answer(resolver, wire(), False) for _ in range(5)]
        return await asyncio.gather(*(resolver.resolve(q, TCP) for q in queries))  # type: ignore[arg-type]

    rcodes = {dns.message.from_wire(a).rcode() for a in run_in(resolver, main())}
    assert rcodes == {dns.rcode.SERVFAIL} and stub.count("www.example.test") == 2  # 2 attempts


def test_serve_stale_after_expiry_when_upstreams_fail(make: Make) -> None:
    resolver, stub, clock = make(stale_window=3600)
    ask(resolver, wire("short.example.test"))
    clock.now += 10
    stub.mode = "servfail"
    got = ask(resolver, wire("short.example.test"))
    assert got.rcode() == dns.rcode.NOERROR and got.answer[0].ttl == 30
    assert got.answer[0][0].to_text() == "192.0.2.9"


def test_no_stale_without_serve_stale(make: Make) -> None:
    resolver, stub, clock = make()
    ask(resolver, wire("short.example.test"))
    clock.now += 10
    stub.mode = "servfail"
    assert ask(resolver, wire("short.example.test")).rcode() == dns.rcode.SERVFAIL


def test_negative_answers_are_cached(make: Make) -> None:
    resolver, stub, clock = make(prefetch=False)  # the hit at 29 s would refresh it (prefetch)
    ask(resolver, wire("nx.example.test"))
    clock.now += 29
    assert ask(resolver, wire("nx.example.test")).rcode() == dns.rcode.NXDOMAIN
    assert stub.count("nx.example.test") == 1
    clock.now += 1
    ask(resolver, wire("nx.example.test"))
    assert stub.count("nx.example.test") == 2


@pytest.mark.parametrize(
    ("data", "rcode"),
    [
        (wire()[:4] + b"\x00\x02" + wire()[6:], dns.rcode.FORMERR),
        (wire(use_edns=1), dns.rcode.BADVERS),
    ],
)
def test_malformed_answered_synchronously(make: Make, data: bytes, rcode: int) -> None:
    resolver, stub, _ = make()
    result = answer(resolver, data)
    assert isinstance(result, bytes) and stub.count("www.example.test") == 0
    assert dns.message.from_wire(result).rcode() == rcode


def _ecs(family: int, source: int, scope: int, address: bytes) -> bytes:
    data = family.to_bytes(2, "big") + bytes((source, scope)) + address
    return wire(use_edns=0, options=[dns.edns.GenericOption(dns.edns.ECS, data)])


@pytest.mark.parametrize(
    "data",
    [
        _ecs(1, 33, 0, b"\xc0\x00\x02\x00\x00"),  # /33 of an IPv4 address
        _ecs(2, 129, 0, b"\x20" * 17),  # /129 of an IPv6 address
        _ecs(1, 24, 8, b"\xc0\x00\x02"),  # a scope prefix in a query
        _ecs(3, 8, 0, b"\x01"),  # no such family
        _ecs(1, 8, 0, b"\xc0\x00\x02"),  # more octets than /8 needs
        _ecs(1, 20, 0, b"\xc0\x00\x0f"),  # bits set past /20
        wire(use_edns=0, options=[dns.edns.GenericOption(dns.edns.ECS, b"\x00\x01")]),
    ],
    ids=["v4-33", "v6-129", "scope", "family", "octets", "bits", "short"],
)
def test_a_malformed_client_subnet_is_formerr_whoever_sends_it(make: Make, data: bytes) -> None:
    # RFC 7871 6: FORMERR, "a signal to the software developer to fix their implementation".
    # A client whose ECS lachan does not trust got a normal answer instead (the option was
    # only read for trusted forwarders), unlike a trusted one sending the same bytes.
    resolver, stub, _ = make()
    result = answer(resolver, data)
    assert isinstance(result, bytes) and stub.count("www.example.test") == 0
    response = dns.message.from_wire(result)
    assert response.rcode() == dns.rcode.FORMERR and response.id == int.from_bytes(data[:2], "big")


def test_a_sound_client_subnet_from_an_untrusted_client_is_answered_and_ignored(
    make: Make,
) -> None:
    resolver, _, _ = make()
    sound = wire(use_edns=0, options=[dns.edns.ECSOption("192.0.2.0", 24)])
    assert isinstance(answer(resolver, sound), Miss)


def test_responses_are_never_answered(make: Make) -> None:
    resolver, _, _ = make()
    reply = bytearray(wire())
    reply[2] |= 0x80
    assert answer(resolver, bytes(reply)) is None


def test_udp_truncation_of_a_cached_big_answer(make: Make) -> None:
    resolver, _, _ = make()
    tcp = ask(resolver, wire("big.example.test", "TXT"), udp=False)
    assert len(tcp.answer[0]) == 22
    udp = ask(resolver, wire("big.example.test", "TXT", use_edns=0))
    assert udp.flags & dns.flags.TC and not udp.answer


def memo_entry_of_a_hit(resolver: Resolver, clock: FakeClock) -> tuple[bytes, tuple]:
    """A query answered once, then again 0.25 s later as a cache hit: (query, its memo entry)."""
    ask(resolver, wire())
    data = wire()
    clock.now += 0.25
    client = resolver.client(resolver.client_table(), "127.0.0.1", LISTENER)
    resolver.answer(data, client, "127.0.0.1", UDP)
    assert client.memo is not None
    return data, client.memo[data[2:]]


def test_memo_entry_expires_at_the_next_second(make: Make) -> None:
    resolver, _, clock = make()
    data, entry = memo_entry_of_a_hit(resolver, clock)
    until, tail = entry[:2]
    assert until == 5001.0
    assert dns.message.from_wire(data[:2] + tail).answer[0].ttl == 300


def test_a_memo_entry_is_out_of_the_collectors_lists_and_still_counts_its_hit(make: Make) -> None:
    # Replaced every second, tracked entries piled up unseen by the young count (see
    # tests/test_gc_settings.py); the counter they carry reaches only the stats.
    resolver, _, clock = make()
    _, entry = memo_entry_of_a_hit(resolver, clock)
    assert not gc.is_tracked(entry) and not gc.is_tracked(entry[2])
    hits = resolver.stats.cache_hits
    resolver.count_prepared(entry)
    assert resolver.stats.cache_hits == hits + 1


def test_inflight_limit(upstream: StubUpstream) -> None:
    clock = FakeClock()
    cfg = config.parse(f"upstreams: ['{upstream.address}']\nserver: {{max_inflight: 1}}", "t.yaml")
    resolver = build_resolver(cfg, build_state(cfg), Stats(), clock)
    upstream.mode = "drop"
    got: list[bytes] = []

    async def main() -> None:
        first = answer(resolver, wire("one.example.test"))
        second = answer(resolver, wire("two.example.test"))
        assert isinstance(first, Miss) and isinstance(second, Miss)
        assert resolver.start_miss(first, UDP, got.append)
        assert resolver.inflight == 1  # max_inflight: no room for another miss
        assert not resolver.start_miss(second, UDP, got.append)  # dropped: never answered
        assert resolver.dropped == 1
        resolver.close()

    asyncio.run(main())
    assert got == [] and upstream.count("two.example.test") == 0
