"""The answer cache: bounded LRU of wire answers whose TTLs count down on read (RFC 1035,
RFC 2308 negative caching, RFC 8767 serve-stale), on an injected monotonic clock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ._nametable import render_ttls, untrack
from .response import ScannedAnswer
from .settings import CachePolicy


def render_ttls_py(
    body: bytes, offsets: tuple[int, ...], floor: int, ceiling: int, age: int
) -> bytes:
    """``body`` with each TTL at ``offsets`` clamped to [floor, ceiling] and counted down by
    ``age``, never below 0; a TTL with its top bit set counts as 0 (RFC 2181 8, as in
    response.scan_answer). The reference for resolver/_ttl.c's ``render_ttls``."""
    out = bytearray(body)
    for off in offsets:
        ttl = int.from_bytes(out[off : off + 4], "big")
        if ttl & 0x80000000:
            ttl = 0
        out[off : off + 4] = max(0, min(max(ttl, floor), ceiling) - age).to_bytes(4, "big")
    return bytes(out)


REFRESH_AT = 0.9  # the share of its TTL after which a hit on an entry starts its prefetch


class CacheEntry:
    """One cached answer; renders its body with TTLs reduced by whole seconds of age."""

    __slots__ = (
        "key", "answer", "stored", "ttl", "expires", "refresh_at", "stale_until", "size", "_age", "_body",
    )  # fmt: skip

    def __init__(
        self,
        answer: ScannedAnswer,
        stored: float,
        ttl: int,
        stale_window: int,
        unclamped: bool = False,
    ):
        self.answer = answer
        self.stored = stored
        self.ttl = ttl
        self.expires = stored + ttl
        self.refresh_at = stored + ttl * REFRESH_AT  # a hit from here on starts a prefetch
        self.stale_until = self.expires + stale_window
        # When no TTL needs clamping, the body at age 0 is the upstream's bytes as they are:
        # the first answer of every miss then skips a copy-and-patch of the whole body.
        self._age = 0 if unclamped else -1
        self._body = answer.body
        self.size = 0  # set by Cache.put (entry_size)
        self.key = b""  # set by Cache.put: the key it is stored under (the dict's own object)

    def body_at(self, now: float, policy: CachePolicy) -> bytes:
        """The sections with each TTL clamped to policy and counted down to ``now``."""
        age = int(now - self.stored)
        if age != self._age:
            # Once per second of age, shared by every client and profile: with many names
            # that is once per hit that re-renders a prepared answer (resolver/_ttl.c).
            answer = self.answer
            ceiling = self.ttl if answer.negative else policy.max_ttl
            self._body = render_ttls(answer.body, answer.ttl_offsets, policy.min_ttl, ceiling, age)
            self._age = age
        return self._body

    def reuse_until(self, now: float) -> float:
        """Until when an answer rendered from this entry at ``now`` may be resent as it is:
        the next whole second of age (its TTLs count down), never past expiry, and never into
        the prefetch window from before it, so that the first hit there reaches the pipeline
        and starts the refresh."""
        until = min(self.stored + int(now - self.stored) + 1, self.expires)
        return self.refresh_at if now < self.refresh_at < until else until

    def stale_body(self, policy: CachePolicy) -> bytes:
        """The sections with every TTL set to the stale answers' TTL (RFC 8767)."""
        stale = policy.stale_answer_ttl
        return render_ttls(self.answer.body, self.answer.ttl_offsets, stale, stale, 0)


# Python's cost of one entry besides its bytes, measured with tracemalloc on CPython 3.11
# (5,000 one-record answers with 27-byte keys: 669 bytes each):
# the entry and the answer tuple, the objects' headers, the OrderedDict slot.
_ENTRY_OVERHEAD = 560
_PER_RECORD = 40  # a TTL offset in the tuple (an int object above 256)


def entry_size(key: bytes, answer: ScannedAnswer) -> int:
    """Bytes one cached answer holds: its key, its body twice (as received and as last
    rendered with counted-down TTLs), and the objects around them."""
    body, records = len(answer.body), len(answer.ttl_offsets)
    return _ENTRY_OVERHEAD + len(key) + 2 * body + _PER_RECORD * records


# Entries per shard at most. A dict under churn (an insert and an eviction per miss) rehashes
# its whole table every few hundred thousand inserts: one OrderedDict of 1,000,000 entries
# (the ISP guide's size) stalls serving 128 ms of CPU each time, one of 100,000 12 ms
# (benchmarks/cache_churn.py). Shards of at most this many entries bound each rehash to a
# few milliseconds; each shard keeps at least 1 MiB of ``max_memory`` so that the largest
# answer (64 KB, held twice) always fits in one.
SHARD_ENTRIES = 8_192
_SHARD_MIN_MEMORY = 1024 * 1024


def shard_count(policy: CachePolicy) -> int:
    """A power of two, so that a key's shard is its hash masked; 1 (exact LRU) for a small
    cache, at most 256."""
    shards = 1
    while (
        shards < 256
        and policy.capacity > shards * SHARD_ENTRIES
        and policy.max_memory >= 2 * shards * _SHARD_MIN_MEMORY
    ):
        shards *= 2
    return shards


class Cache:
    """Keyed by lowercase qname + qtype + qclass + DO/CD flag byte (see wire.Query.key).

    Bounded twice, evicting the least recently used: by entries (``capacity``) and by the
    bytes they hold (``max_memory``, as ``entry_size`` counts them). A large cache is split
    into shards by the key's hash, each with its share of both bounds and its own LRU order
    (as unbound's slabs): least recently used within a shard, near enough overall.
    """

    def __init__(
        self, policy: CachePolicy, clock: Callable[[], float], counters: Any = None
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._counters = counters  # the process's Stats (has cache_evictions), if any
        shards = shard_count(policy)
        self._mask = shards - 1
        self._shards: list[OrderedDict[bytes, CacheEntry]] = [OrderedDict() for _ in range(shards)]
        self._held = [0] * shards  # bytes per shard
        self._shard_capacity = -(-policy.capacity // shards)
        self._shard_memory = policy.max_memory // shards
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.stale_served = 0
        self.bytes = 0  # sum of entry_size over the entries

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def get(self, key: bytes, now: float) -> CacheEntry | None:
        """A fresh entry, marked recently used; None when absent or expired."""
        shard = self._shards[hash(key) & self._mask]
        entry = shard.get(key)
        if entry is None or now >= entry.expires:
            self.misses += 1
            return None
        shard.move_to_end(key)
        self.hits += 1
        return entry

    def peek(self, key: bytes) -> CacheEntry | None:
        """The entry under ``key``, fresh or not, neither counted nor marked used."""
        return self._shards[hash(key) & self._mask].get(key)

    def get_stale(self, key: bytes, now: float) -> CacheEntry | None:
        """An expired entry still inside the serve-stale window, if serve-stale is on."""
        entry = self._shards[hash(key) & self._mask].get(key)
        if entry is None or now >= entry.stale_until:
            return None
        self.stale_served += 1
        return entry

    def put(self, key: bytes, answer: ScannedAnswer) -> CacheEntry | None:
        """Store a cacheable answer; returns the entry, or None if it must not be cached."""
        if not answer.cacheable:
            return None
        ttl = self._effective_ttl(answer)
        if ttl <= 0:
            return None
        policy = self.policy
        unclamped = (
            not answer.negative
            and answer.min_ttl >= policy.min_ttl
            and answer.max_ttl <= policy.max_ttl
        )
        entry = CacheEntry(answer, self._clock(), ttl, policy.stale_window, unclamped)
        # Out of the cyclic collector's lists: an entry holds numbers, bytes and its answer,
        # an answer numbers, bytes and tuples of them, so none can be part of a cycle and
        # reference counting frees them. Left in, a full cache under churn hid its new entries
        # from the collector's count (each eviction paid for an insertion) until one young
        # collection scanned 320,000 objects: a 190 ms stall (tests/test_gc_settings.py).
        untrack(entry, answer, answer.ttl_offsets, answer.cname_targets)
        index = hash(key) & self._mask
        entries = self._shards[index]
        entry.size = size = entry_size(key, answer)
        entry.key = key
        old = entries.get(key)
        if old is not None:
            size -= old.size
        entries[key] = entry
        entries.move_to_end(key)
        held = self._held[index] + size
        self.bytes += size
        while len(entries) > self._shard_capacity or held > self._shard_memory:
            evicted = entries.popitem(last=False)[1].size
            held -= evicted
            self.bytes -= evicted
            self.evictions += 1
            if self._counters is not None:
                self._counters.cache_evictions += 1  # lachan_cache_evictions_total
        self._held[index] = held
        return entry

    def clear(self) -> None:
        for shard in self._shards:
            shard.clear()
        self._held = [0] * len(self._shards)
        self.bytes = 0

    def _effective_ttl(self, answer: ScannedAnswer) -> int:
        policy = self.policy
        if answer.negative:
            return min(max(answer.min_ttl, policy.min_ttl), policy.negative_max_ttl)
        return min(max(answer.min_ttl, policy.min_ttl), policy.max_ttl)
