"""The period accumulator: aligned periods, rolling, shutdown, merging workers."""

from __future__ import annotations

import pytest
from audit_helpers import T0, FakeClock

from resolver.audit.accumulator import PeriodAccumulator, PeriodCounts, period_bounds
from resolver.errors import AuditError


@pytest.mark.parametrize(
    ("now", "period", "bounds"),
    [(T0, 3600, (T0, T0 + 3600)), (T0 + 3599, 3600, (T0, T0 + 3600)),
     (T0 + 3600, 3600, (T0 + 3600, T0 + 7200)), (T0 + 301, 300, (T0 + 300, T0 + 600))],
)  # fmt: skip
def test_period_bounds(now: int, period: int, bounds: tuple[int, int]) -> None:
    assert period_bounds(now, period) == bounds


def test_roll_only_after_the_period_ends() -> None:
    clock = FakeClock(T0 + 1800)
    acc = PeriodAccumulator(clock=clock)
    acc.add("blocked", "adult", "school")
    acc.add("blocked", "adult", "school", 4)
    acc.add_many({("allowed", "none", "school"): 10})
    acc.add_safe_search("youtube")
    clock.now = T0 + 3599
    assert not acc.due() and acc.roll() is None
    clock.now = T0 + 3600
    counts = acc.roll()
    assert counts == PeriodCounts(
        T0 + 1800, T0 + 3600,
        {("blocked", "adult", "school"): 5, ("allowed", "none", "school"): 10}, {"youtube": 1},
    )  # fmt: skip
    assert counts.queries == 15
    assert acc.period_end == T0 + 7200
    clock.now = T0 + 7200
    empty = acc.roll()
    assert empty is not None and empty.queries == 0 and empty.start == T0 + 3600


def test_late_roll_skips_to_the_current_period() -> None:
    clock = FakeClock(T0)
    acc = PeriodAccumulator(clock=clock)
    clock.now = T0 + 3 * 3600 + 5
    counts = acc.roll()
    assert counts is not None and (counts.start, counts.end) == (T0, T0 + 3600)
    assert acc.period_end == T0 + 4 * 3600


def test_close_at_shutdown_and_not_before() -> None:
    clock = FakeClock(T0 + 100)
    acc = PeriodAccumulator(clock=clock, not_before=T0 + 200)
    clock.now = T0 + 900
    counts = acc.close()
    assert (counts.start, counts.end) == (T0 + 200, T0 + 900)


def test_cube_refuses_names_and_addresses() -> None:
    for bad in ("example.com", "10.0.0.1", "2001:db8::1", "Adult", ""):
        counts = PeriodCounts(T0, T0 + 1, {("blocked", bad, "school"): 1}, {})
        with pytest.raises(AuditError, match="not a label"):
            counts.cube()


def test_merge_workers() -> None:
    a = PeriodCounts(T0, T0 + 60, {("allowed", "none", "p"): 2}, {"google": 1})
    b = PeriodCounts(T0, T0 + 60, {("allowed", "none", "p"): 3, ("blocked", "x", "p"): 1}, {})
    merged = a.merged(b)
    assert merged.answers == {("allowed", "none", "p"): 5, ("blocked", "x", "p"): 1}
    assert merged.safe_search == {"google": 1}
    with pytest.raises(AuditError):
        a.merged(PeriodCounts(T0 + 60, T0 + 120, {}, {}))


def test_a_period_under_one_second_is_refused_but_one_second_is_taken() -> None:
    with pytest.raises(AuditError):
        PeriodAccumulator(period=0, clock=FakeClock(T0))
    assert PeriodAccumulator(period=1, clock=FakeClock(T0)).period_end == T0 + 1
