"""Prefetch (cache.prefetch): a hit in the last tenth of an entry's TTL refreshes it in the
background, once per entry, through the same exchange and completion as a client's miss.
A fake clock and the real stub upstream on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import dns.message
import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.cache import CacheEntry
from resolver.errors import ConfigError
from resolver.pipeline import UDP, Miss, Resolver
from resolver.reloadable import applied_config, restart_needed
from resolver.response import scan_answer
from resolver.state import build_state
from resolver.stats import Stats
from tests.stub_upstream import StubUpstream

NAME = "popular.ttl10.example.test"  # the stub answers *.ttl10 with TTL 10
LISTENER = ("127.0.0.1", 53)


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stub() -> Iterator[StubUpstream]:
    with StubUpstream() as server:
        yield server


Make = Callable[..., tuple[Resolver, FakeClock]]


@pytest.fixture
def make(stub: StubUpstream) -> Make:
    def build(extra: str = "") -> tuple[Resolver, FakeClock]:
        clock = FakeClock()
        text = f"upstreams: ['{stub.address}']\nupstream: {{timeout: 0.2}}\n{extra}"
        cfg = config.parse(text, "test.yaml")
        return build_resolver(cfg, build_state(cfg), Stats(), clock), clock

    return build


def query(name: str = NAME) -> bytes:
    return dns.message.make_query(name, "A").to_wire()


def ask(resolver: Resolver, data: bytes) -> dns.message.Message:
    """One query from inside a running loop, then wait for whatever it left in flight
    (the client's miss, or a background prefetch)."""

    async def main() -> bytes:
        client = resolver.client(resolver.client_table(), "127.0.0.1", LISTENER)
        result = resolver.answer(data, client, "127.0.0.1", UDP)
        if isinstance(result, Miss):
            result = await resolver.resolve(result, UDP)
        for _ in range(200):
            if not resolver.inflight:
                break
            await asyncio.sleep(0.01)
        resolver.close()
        assert isinstance(result, bytes)
        return result

    return dns.message.from_wire(asyncio.run(main()))


def test_a_hit_before_the_last_tenth_does_not_prefetch(make: Make, stub: StubUpstream) -> None:
    resolver, clock = make()
    ask(resolver, query())
    clock.now += 8.9
    assert ask(resolver, query()).answer[0].ttl == 2
    assert stub.count(NAME) == 1 and resolver.stats.prefetches == 0


def test_a_hit_in_the_last_tenth_refreshes_the_entry_once(make: Make, stub: StubUpstream) -> None:
    resolver, clock = make()
    ask(resolver, query())
    clock.now += 9.2
    assert ask(resolver, query()).answer[0].ttl == 1  # served from the old entry at once
    assert stub.count(NAME) == 2 and resolver.stats.prefetches == 1
    clock.now += 0.5  # past the old entry's expiry: the refreshed one answers, no miss
    assert ask(resolver, query()).answer[0].ttl == 10
    assert stub.count(NAME) == 2 and resolver.stats.cache_misses == 1


def test_one_prefetch_in_flight_per_entry(make: Make, stub: StubUpstream) -> None:
    resolver, clock = make()
    ask(resolver, query())
    clock.now += 9.5
    stub.mode, stub.delay = "slow", 0.1

    async def main() -> None:
        client = resolver.client(resolver.client_table(), "127.0.0.1", LISTENER)
        for _ in range(50):  # all of them hits, all in the window, one refresh
            assert isinstance(resolver.answer(query(), client, "127.0.0.1", UDP), bytes)
        assert resolver.inflight == 1
        while resolver.inflight:
            await asyncio.sleep(0.01)
        resolver.close()

    asyncio.run(main())
    assert stub.count(NAME) == 2 and resolver.stats.prefetches == 1


def test_a_failed_prefetch_keeps_the_entry_and_may_be_tried_again(
    make: Make, stub: StubUpstream
) -> None:
    resolver, clock = make()
    ask(resolver, query())
    clock.now += 9.1
    stub.mode = "servfail"
    assert ask(resolver, query()).answer[0][0].to_text() == "192.0.2.10"
    tried = stub.count(NAME)
    assert tried >= 2 and resolver.stats.prefetches == 1
    stub.mode = "normal"
    clock.now += 0.1
    ask(resolver, query())  # the failure freed the entry's slot: this hit refreshes it
    assert stub.count(NAME) == tried + 1 and resolver.stats.prefetches == 2
    clock.now += 0.8  # past the old entry's expiry, within the new one's first second
    assert ask(resolver, query()).answer[0].ttl == 10


def test_prefetch_off_lets_the_entry_expire(make: Make, stub: StubUpstream) -> None:
    resolver, clock = make("cache: {prefetch: false}\n")
    ask(resolver, query())
    clock.now += 9.5
    ask(resolver, query())
    assert stub.count(NAME) == 1 and resolver.stats.prefetches == 0


def test_a_prepared_answer_stops_at_the_prefetch_window(make: Make) -> None:
    """The memo would otherwise answer every hit of the window's second from Python's past."""
    resolver, clock = make()
    ask(resolver, query())
    clock.now += 8.6
    data = query()
    client = resolver.client(resolver.client_table(), "127.0.0.1", LISTENER)
    resolver.answer(data, client, "127.0.0.1", UDP)
    assert client.memo is not None and client.memo[data[2:]][0] == pytest.approx(5009.0)


@pytest.mark.parametrize(
    ("age", "until"),
    [(0.2, 1.0), (8.1, 9.0), (8.95, 9.0), (9.0, 10.0), (9.5, 10.0)],
)
def test_reuse_until_is_the_next_second_but_not_into_the_window(age: float, until: float) -> None:
    reply = dns.message.make_response(dns.message.make_query("a.example", "A"))
    data = reply.to_wire()
    entry = CacheEntry(scan_answer(data, len(data)), 0.0, 10, 0)
    assert entry.reuse_until(age) == pytest.approx(until)


def test_cache_prefetch_is_applied_by_a_reload_without_a_restart() -> None:
    old = config.parse("cache: {size: 10}\n", "a.yaml")
    new = config.parse("cache: {size: 10, prefetch: false}\n", "a.yaml")
    assert old.cache.prefetch and restart_needed(old, new) == []
    assert applied_config(old, new).cache.prefetch is False
    bigger = config.parse("cache: {size: 20, prefetch: false}\n", "a.yaml")
    assert applied_config(old, bigger).cache.capacity == 10 and restart_needed(old, bigger)


def test_a_wrong_prefetch_value_is_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"cache\.prefetch: must be a boolean"):
        config.parse("cache: {prefetch: maybe}\n", "a.yaml")
