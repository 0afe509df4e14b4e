"""Request rate limits of the console and block page: per address, in all, memory bounded."""

from __future__ import annotations

from resolver.console import limits
from resolver.console.limits import Rate, RequestLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_gets_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RequestLimiter(Rate(5, 30), Rate(1000, 1000), clock)
    assert sum(limiter.admit("10.0.0.7") for _ in range(100)) == 30
    clock.now += 1
    assert sum(limiter.admit("10.0.0.7") for _ in range(100)) == 5
    assert limiter.admit("10.0.0.8")  # a neighbour is not held back by it


def test_all_addresses_together_are_held_to_the_total() -> None:
    clock = Clock()
    limiter = RequestLimiter(Rate(5, 30), Rate(100, 200), clock)
    admitted = sum(limiter.admit(f"10.0.{i // 250}.{i % 250}") for i in range(1000))
    assert admitted == 200
    clock.now += 0.5
    assert sum(limiter.admit(f"10.1.0.{i}") for i in range(200)) == 50


def test_a_flood_of_sources_keeps_the_table_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(limits, "MAX_ADDRESSES", 100)
    clock = Clock()
    limiter = RequestLimiter(Rate(5, 30), Rate(1e9, 1e9), clock)
    for i in range(5000):
        clock.now += 0.001
        assert limiter.admit(f"2001:db8::{i:x}")
    assert len(limiter._buckets) <= 101
