"""Tests for resolver/cache.py on a fake clock: TTL countdown, bounds, negative caching
(RFC 2308), LRU eviction and the serve-stale window (RFC 8767)."""

from __future__ import annotations

import dns.message
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.cache import SHARD_ENTRIES, Cache, CachePolicy, entry_size, shard_count
from resolver.response import ScannedAnswer, question_end, scan_answer
from tests.stub_upstream import answer


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def scanned(name: str, rdtype: str = "A") -> ScannedAnswer:
    wire = answer(dns.message.make_query(name, rdtype)).to_wire()
    return scan_answer(wire, question_end(wire))


def ttls(body: bytes, answer: ScannedAnswer) -> list[int]:
    return [int.from_bytes(body[o : o + 4], "big") for o in answer.ttl_offsets]


def make(clock: FakeClock, **policy: int) -> Cache:
    return Cache(CachePolicy(**policy), clock)


def test_ttl_counts_down_in_whole_seconds_and_expires() -> None:
    clock = FakeClock()
    cache = make(clock)
    a = scanned("x.ttl10.example.test")
    cache.put(b"k", a)
    for elapsed, expected in [(0, 10), (0.9, 10), (1.0, 9), (9.99, 1)]:
        clock.now = 1000 + elapsed
        entry = cache.get(b"k", clock.now)
        assert entry is not None and ttls(entry.body_at(clock.now, cache.policy), a) == [expected]
    clock.now = 1010
    assert cache.get(b"k", clock.now) is None
    assert (cache.hits, cache.misses) == (4, 1)


def test_records_count_down_from_their_own_ttls() -> None:
    clock = FakeClock()
    cache = make(clock)
    a = scanned("nx.example.test")  # SOA TTL 60, negative TTL 30
    entry = cache.put(b"k", a)
    assert entry is not None and entry.ttl == 30
    clock.now += 5
    # a negative answer's SOA is clamped to the negative TTL (RFC 2308 5), then counts down
    assert ttls(entry.body_at(clock.now, cache.policy), a) == [25]


@pytest.mark.parametrize(
    ("name", "policy", "stored_ttl", "shown"),
    [
        ("x.ttl5.example.test", {"min_ttl": 60}, 60, 60),
        ("x.ttl5000.example.test", {"max_ttl": 100}, 100, 100),
        ("nx.example.test", {"negative_max_ttl": 10}, 10, 10),
        ("nx.example.test", {"min_ttl": 45}, 45, 45),
        ("www.example.test", {}, 300, 300),
    ],
)
def test_min_and_max_ttl(name: str, policy: dict[str, int], stored_ttl: int, shown: int) -> None:
    clock = FakeClock()
    cache = make(clock, **policy)
    a = scanned(name)
    entry = cache.put(b"k", a)
    assert entry is not None and entry.ttl == stored_ttl
    assert max(ttls(entry.body_at(clock.now, cache.policy), a)) == shown


def test_zero_ttl_and_uncacheable_answers_are_not_stored() -> None:
    cache = make(FakeClock())
    assert cache.put(b"zero", scanned("x.ttl0.example.test")) is None
    truncated = scanned("www.example.test")
    assert cache.put(b"tc", ScannedAnswer(**{**_fields(truncated), "cacheable": False})) is None
    assert len(cache) == 0


def _fields(a: ScannedAnswer) -> dict[str, object]:
    return a._asdict()


def test_lru_bound_evicts_least_recently_used() -> None:
    clock = FakeClock()
    cache = make(clock, capacity=3)
    a = scanned("www.example.test")
    for key in (b"a", b"b", b"c"):
        cache.put(key, a)
    assert cache.get(b"a", clock.now) is not None  # a is now the most recent
    cache.put(b"d", a)
    assert len(cache) == 3 and cache.evictions == 1
    assert cache.get(b"b", clock.now) is None
    assert all(cache.get(k, clock.now) is not None for k in (b"a", b"c", b"d"))


def test_lru_bound_holds_under_many_inserts() -> None:
    cache = make(FakeClock(), capacity=100)
    a = scanned("www.example.test")
    for i in range(5_000):
        cache.put(i.to_bytes(4, "big"), a)
    assert len(cache) == 100 and cache.evictions == 4_900


def test_serve_stale_window() -> None:
    clock = FakeClock()
    cache = make(clock, stale_window=100, stale_answer_ttl=30)
    a = scanned("short.example.test")  # TTL 1
    cache.put(b"k", a)
    clock.now += 50
    assert cache.get(b"k", clock.now) is None
    stale = cache.get_stale(b"k", clock.now)
    assert stale is not None and ttls(stale.stale_body(cache.policy), a) == [30]
    clock.now += 51  # past expiry + window
    assert cache.get_stale(b"k", clock.now) is None
    assert cache.stale_served == 1


def test_no_stale_without_a_window() -> None:
    clock = FakeClock()
    cache = make(clock)
    cache.put(b"k", scanned("short.example.test"))
    clock.now += 1
    assert cache.get_stale(b"k", clock.now) is None


def test_refresh_replaces_and_clear_empties() -> None:
    clock = FakeClock()
    cache = make(clock)
    cache.put(b"k", scanned("short.example.test"))
    clock.now += 2
    cache.put(b"k", scanned("www.example.test"))
    entry = cache.get(b"k", clock.now)
    assert entry is not None and int(entry.expires - clock.now) == 300
    cache.clear()
    assert len(cache) == 0


@settings(max_examples=200, deadline=None)
@given(
    ttl=st.integers(0, 100_000),
    ages=st.lists(st.floats(0, 200_000, allow_nan=False), min_size=1, max_size=20),
    min_ttl=st.integers(0, 100),
    max_ttl=st.integers(1, 86_400),
)
def test_ttls_count_down_monotonically_within_bounds(
    ttl: int, ages: list[float], min_ttl: int, max_ttl: int
) -> None:
    clock = FakeClock(0.0)
    cache = make(clock, min_ttl=min_ttl, max_ttl=max_ttl)
    a = scanned(f"x.ttl{ttl}.example.test")
    entry = cache.put(b"k", a)
    if entry is None:
        assert min(max(ttl, min_ttl), max_ttl) == 0
        return
    previous = entry.ttl
    for age in sorted(ages):
        clock.now = age
        hit = cache.get(b"k", age)
        if hit is None:
            assert age >= entry.expires
            continue
        (shown,) = ttls(hit.body_at(age, cache.policy), a)
        assert 0 < shown <= previous <= max(max_ttl, min_ttl)
        previous = shown


def test_evictions_reach_the_exported_counter() -> None:
    from resolver.stats import Stats

    stats = Stats()
    cache = Cache(CachePolicy(capacity=2), FakeClock(), stats)
    answer = scanned("www.example.test")
    for key in (b"a", b"b", b"c", b"d"):
        cache.put(key, answer)
    assert cache.evictions == 2 and stats.cache_evictions == 2


def big(name: str) -> ScannedAnswer:
    """A ~60 KB TXT answer, as the largest a TCP client can be sent."""
    query = dns.message.make_query(name, "TXT")
    response = dns.message.make_response(query)
    text = " ".join('"' + "x" * 250 + '"' for _ in range(240))
    response.answer.append(dns.rrset.from_text(name, 300, "IN", "TXT", text))
    wire = response.to_wire(max_size=65535)
    return scan_answer(wire, question_end(wire))


def test_max_memory_bounds_the_bytes_held_evicting_least_recently_used() -> None:
    clock = FakeClock()
    cache = make(clock, max_memory=4 * 1024 * 1024)
    answer = big("big.example.test.")
    for i in range(1_000):  # ~120 MB of bodies (twice 60 KB each) if nothing were evicted
        cache.put(f"k{i}".encode(), answer)
        assert cache.bytes <= cache.policy.max_memory
    assert 30 <= len(cache) <= 35  # 4 MiB / ~121 KB
    assert cache.get(b"k999", clock.now) is not None and cache.get(b"k0", clock.now) is None
    assert cache.evictions == 1_000 - len(cache)


def test_accounted_bytes_follow_replacements_and_clear() -> None:
    clock = FakeClock()
    cache = make(clock)
    small = scanned("www.example.test")
    cache.put(b"k", small)
    one = cache.bytes
    assert one > 2 * len(small.body)
    cache.put(b"k", small)  # a refresh replaces, it does not add
    assert cache.bytes == one
    cache.put(b"k", big("www.example.test."))
    assert cache.bytes > 120_000
    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0


MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("capacity", "max_memory", "shards"),
    [
        (3, 128 * MiB, 1),  # small caches keep one exact LRU order
        (8_192, 128 * MiB, 1),
        (100_000, 128 * MiB, 16),
        (1_000_000, 128 * MiB, 128),  # each shard keeps >= 1 MiB: the largest answer fits
        (1_000_000, 8 * MiB, 8),
        (1_000_000, 1 * MiB, 1),
        (100_000_000, 1_048_576 * MiB, 256),
    ],
)
def test_shard_count(capacity: int, max_memory: int, shards: int) -> None:
    assert shard_count(CachePolicy(capacity=capacity, max_memory=max_memory)) == shards


def test_a_sharded_cache_keeps_its_bounds_and_evicts_the_oldest() -> None:
    """Shards bound the table a churning insert may have to rehash (SHARD_ENTRIES); the
    cache as a whole still holds ``capacity`` entries, evicting the least recently used."""
    cache = make(FakeClock(), capacity=100_000)
    answer = scanned("x.example.test")
    keys = [b"k%d" % i for i in range(150_000)]
    for key in keys:
        cache.put(key, answer)
    assert 99_000 <= len(cache) <= 100_000 + 16
    assert max(len(shard) for shard in cache._shards) <= SHARD_ENTRIES
    assert cache.bytes == sum(entry_size(key, answer) for key in keys if cache.get(key, 1000.0))
    assert all(cache.get(key, 1000.0) is not None for key in keys[-1000:])
    assert all(cache.get(key, 1000.0) is None for key in keys[:1000])
