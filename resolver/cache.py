"""The answer cache: bounded LRU of wire answers whose TTLs count down on read (RFC 1035,
RFC 2308 negative caching, RFC 8767 serve-stale), on an injected monotonic clock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .response import ScannedAnswer
from .settings import CachePolicy


class CacheEntry:
    """One cached answer; renders its body with TTLs reduced by whole seconds of age."""

    __slots__ = ("answer", "stored", "ttl", "expires", "stale_until", "size", "_age", "_body")

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
        self.stale_until = self.expires + stale_window
        # When no TTL needs clamping, the body at age 0 is the upstream's bytes as they are:
        # the first answer of every miss then skips a copy-and-patch of the whole body.
        self._age = 0 if unclamped else -1
        self._body = answer.body
        self.size = 0  # set by Cache.put (entry_size)

    def body_at(self, now: float, policy: CachePolicy) -> bytes:
        """The sections with each TTL clamped to policy and counted down to ``now``."""
        age = int(now - self.stored)
        if age != self._age:
            self._body = self._render(lambda ttl: max(0, self._clamp(ttl, policy) - age))
            self._age = age
        return self._body

    def stale_body(self, policy: CachePolicy) -> bytes:
        return self._render(lambda ttl: policy.stale_answer_ttl)

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires - now))

    def _clamp(self, ttl: int, policy: CachePolicy) -> int:
        return min(max(ttl, policy.min_ttl), self.ttl if self.answer.negative else policy.max_ttl)

    def _render(self, new_ttl: Callable[[int], int]) -> bytes:
        body = bytearray(self.answer.body)
        for off in self.answer.ttl_offsets:
            ttl = int.from_bytes(body[off : off + 4], "big")
            if ttl & 0x80000000:
                ttl = 0  # RFC 2181 8, as in response.scan_answer
            body[off : off + 4] = new_ttl(ttl).to_bytes(4, "big")
        return bytes(body)


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


class Cache:
    """Keyed by lowercase qname + qtype + qclass + DO/CD flag byte (see wire.Query.key).

    Bounded twice, evicting the least recently used: by entries (``capacity``) and by the
    bytes they hold (``max_memory``, as ``entry_size`` counts them).
    """

    def __init__(
        self, policy: CachePolicy, clock: Callable[[], float], counters: Any = None
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._counters = counters  # the process's Stats (has cache_evictions), if any
        self._entries: OrderedDict[bytes, CacheEntry] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.stale_served = 0
        self.bytes = 0  # sum of entry_size over the entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, now: float) -> CacheEntry | None:
        """A fresh entry, marked recently used; None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None or now >= entry.expires:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def get_stale(self, key: bytes, now: float) -> CacheEntry | None:
        """An expired entry still inside the serve-stale window, if serve-stale is on."""
        entry = self._entries.get(key)
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
        entries = self._entries
        entry.size = entry_size(key, answer)
        old = entries.get(key)
        if old is not None:
            self.bytes -= old.size
        entries[key] = entry
        entries.move_to_end(key)
        self.bytes += entry.size
        while len(entries) > policy.capacity or self.bytes > policy.max_memory:
            self.bytes -= entries.popitem(last=False)[1].size
            self.evictions += 1
            if self._counters is not None:
                self._counters.cache_evictions += 1  # lachan_cache_evictions_total
        return entry

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _effective_ttl(self, answer: ScannedAnswer) -> int:
        policy = self.policy
        if answer.negative:
            return min(max(answer.min_ttl, policy.min_ttl), policy.negative_max_ttl)
        return min(max(answer.min_ttl, policy.min_ttl), policy.max_ttl)
