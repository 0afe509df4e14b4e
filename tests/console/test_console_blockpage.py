"""The block page's bound on review filings: a looping script cannot fill the staff's queue."""

from __future__ import annotations

from resolver.console.blockpage import Filings


def test_at_most_thirty_filings_a_minute_then_more_after_the_minute() -> None:
    filings = Filings()
    assert all(filings.admit(100.0 + n / 10) for n in range(Filings.PER_MINUTE))
    assert not filings.admit(105.0)
    assert filings.admit(160.5)  # the first ones are more than a minute old
