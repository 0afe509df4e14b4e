"""Helpers for the audit tests: a fixed epoch, a fake clock, and a ledger filler."""

from __future__ import annotations

from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.ledger import FilterState, Ledger

T0 = 1_764_288_000  # 2025-11-28T00:00:00Z, an hour boundary
STATE = FilterState("sha256:idx0001", T0 - 3600, "sha256:pol0001", "0.1.0")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fill(ledger: Ledger, clock: FakeClock, hours: int, blocks: int = 3) -> None:
    """Append ``hours`` hourly records with a few allowed and blocked answers each."""
    acc = PeriodAccumulator(clock=clock, not_before=ledger.last_period_end)
    for hour in range(hours):
        acc.add("allowed", "none", "school", 100 + hour)
        acc.add("blocked", "adult", "school", blocks)
        acc.add("blocked", "gambling", "under16", hour)
        acc.add_safe_search("google", 2)
        clock.now = acc.period_end
        counts = acc.roll()
        assert counts is not None
        ledger.append(counts, STATE)
