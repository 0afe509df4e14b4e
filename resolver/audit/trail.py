"""What the server holds: an accumulator and a ledger, rolled on a timer, closed at shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from resolver.audit.accumulator import DEFAULT_PERIOD, PeriodAccumulator, PeriodCounts
from resolver.audit.keys import load_private_key
from resolver.audit.ledger import FilterState, Ledger
from resolver.audit.record import AuditRecord

AllowCounter = Callable[[int, int], Mapping[str, int]]  # (start, end) -> category -> granted


class AuditTrail:
    """Feed ``counts`` (a PeriodAccumulator) on the hot path; call ``tick()`` every few seconds.

    ``state`` is called once per record for the index/policy digests in force at the period's
    end, so a reload mid-period is attributed to the period it finished in. ``allows(start,
    end)``, if given, counts the temporary allows granted in a period, per category: read from
    the allows' own log when the period closes, so allows made by the CLI, by the console or
    while this process was busy are all counted once.
    """

    def __init__(self, ledger: Ledger, counts: PeriodAccumulator,
                 state: Callable[[], FilterState], allows: AllowCounter | None = None) -> None:  # fmt: skip
        self.ledger = ledger
        self.counts = counts
        self._state = state
        self._allows = allows

    @classmethod
    def open(
        cls, path: Path, key_path: Path, *, site: str, site_kind: str, instance: str,
        state: Callable[[], FilterState], period: int = DEFAULT_PERIOD,
        clock: Callable[[], float] = time.time, allows: AllowCounter | None = None,
    ) -> AuditTrail:  # fmt: skip
        """Open the ledger (recovering a torn tail) and start the period where it left off."""
        ledger = Ledger.open(path, load_private_key(key_path), site=site,
                             site_kind=site_kind, instance=instance)  # fmt: skip
        counts = PeriodAccumulator(period, clock=clock, not_before=ledger.last_period_end)
        return cls(ledger, counts, state, allows)

    def tick(self) -> AuditRecord | None:
        """Append the record of the period that just ended, if one did."""
        closed = self.counts.roll()
        return self.ledger.append(self._with_allows(closed), self._state()) if closed else None

    def close(self) -> AuditRecord:
        """Graceful shutdown: record the partial period, then release the ledger."""
        try:
            return self.ledger.append(self._with_allows(self.counts.close()), self._state())
        finally:
            self.ledger.close()

    def _with_allows(self, closed: PeriodCounts) -> PeriodCounts:
        if self._allows is None:
            return closed
        return replace(closed, temporary_allows=self._allows(closed.start, closed.end))
