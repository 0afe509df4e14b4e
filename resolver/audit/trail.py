"""What the server holds: an accumulator and a ledger, rolled on a timer, closed at shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from resolver.audit.accumulator import DEFAULT_PERIOD, PeriodAccumulator
from resolver.audit.keys import load_private_key
from resolver.audit.ledger import FilterState, Ledger
from resolver.audit.record import AuditRecord


class AuditTrail:
    """Feed ``counts`` (a PeriodAccumulator) on the hot path; call ``tick()`` every few seconds.

    ``state`` is called once per record for the index/policy digests in force at the period's
    end, so a reload mid-period is attributed to the period it finished in.
    """

    def __init__(self, ledger: Ledger, counts: PeriodAccumulator,
                 state: Callable[[], FilterState]) -> None:  # fmt: skip
        self.ledger = ledger
        self.counts = counts
        self._state = state

    @classmethod
    def open(
        cls, path: Path, key_path: Path, *, site: str, site_kind: str, instance: str,
        state: Callable[[], FilterState], period: int = DEFAULT_PERIOD,
        clock: Callable[[], float] = time.time,
    ) -> AuditTrail:  # fmt: skip
        """Open the ledger (recovering a torn tail) and start the period where it left off."""
        ledger = Ledger.open(path, load_private_key(key_path), site=site,
                             site_kind=site_kind, instance=instance)  # fmt: skip
        counts = PeriodAccumulator(period, clock=clock, not_before=ledger.last_period_end)
        return cls(ledger, counts, state)

    def tick(self) -> AuditRecord | None:
        """Append the record of the period that just ended, if one did."""
        closed = self.counts.roll()
        return self.ledger.append(closed, self._state()) if closed else None

    def close(self) -> AuditRecord:
        """Graceful shutdown: record the partial period, then release the ledger."""
        try:
            return self.ledger.append(self.counts.close(), self._state())
        finally:
            self.ledger.close()
