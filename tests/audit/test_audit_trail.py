"""AuditTrail: the server-facing wrapper rolls periods on tick and records a partial one at exit."""

from __future__ import annotations

from pathlib import Path

from audit_helpers import STATE, T0, FakeClock

from resolver.audit.trail import AuditTrail
from resolver.audit.verify import verify_ledger


def test_tick_and_close(tmp_path: Path, keydir: Path, public_key) -> None:
    clock = FakeClock(T0 + 600)
    path = tmp_path / "l.jsonl"
    trail = AuditTrail.open(path, keydir / "audit.key", site="thpt-a", site_kind="school",
                            instance="gw1", state=lambda: STATE, clock=clock)  # fmt: skip
    trail.counts.add("blocked", "adult", "under16", 7)
    assert trail.tick() is None
    clock.now = T0 + 3600
    first = trail.tick()
    assert first is not None and (first.period_start, first.period_end) == (T0 + 600, T0 + 3600)
    trail.counts.add("allowed", "none", "under16", 3)
    clock.now = T0 + 4000
    last = trail.close()
    assert (last.period_start, last.period_end, last.queries) == (T0 + 3600, T0 + 4000, 3)
    again = AuditTrail.open(path, keydir / "audit.key", site="thpt-a", site_kind="school",
                            instance="gw1", state=lambda: STATE, clock=clock)  # fmt: skip
    assert again.counts.period_end == T0 + 7200
    clock.now = T0 + 7200
    assert again.tick() is not None
    again.ledger.close()
    result = verify_ledger(path, public_key)
    assert result.ok and [r.period_start for r in result.records] == [
        T0 + 600,
        T0 + 3600,
        T0 + 4000,
    ]
