"""The collector settings a serving process runs with (app.settle_memory), checked by what
the collector has to scan while the cache fills: counts of objects, not timings, so the test
means the same on a loaded machine."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import dns.message
import dns.rrset
import pytest

from resolver.cache import Cache, CachePolicy
from resolver.querystate import parse_reply
from resolver.services import settle_memory

ENTRIES = 150_000  # every entry survives: two tracked objects each (entry, answer)


@pytest.fixture
def settled() -> Iterator[list[tuple[int, int]]]:
    """settle_memory() in this process, and (generation, objects scanned) per collection;
    the test process's own collector settings come back afterwards."""
    thresholds = gc.get_threshold()
    seen: list[tuple[int, int]] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            generation = info["generation"]
            seen.append((generation, sum(len(gc.get_objects(g)) for g in range(generation + 1))))

    settle_memory()
    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_a_filling_cache_never_makes_one_collection_scan_all_it_holds(
    settled: list[tuple[int, int]],
) -> None:
    query = dns.message.make_query("x.example.", "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("x.example.", 300, "IN", "A", "192.0.2.1"))
    wire = reply.to_wire()
    cache = Cache(CachePolicy(capacity=2 * ENTRIES, max_memory=1 << 34), time.monotonic)
    for i in range(ENTRIES):
        cache.put(b"k%d" % i, parse_reply(wire))
    assert len(cache) == ENTRIES
    middle = [scanned for generation, scanned in settled if generation == 1]
    assert middle, "the middle generation was never collected: the test shows nothing"
    # At (10,000, 20, 100) one such collection scanned ~150,000 objects at once
    # at once (28 ms of CPU); now at most what survived 4 young collections of 5,000.
    assert max(middle) < 30_000, middle
    assert all(generation < 2 for generation, _ in settled)  # no full collection
