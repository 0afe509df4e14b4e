"""The ledger holds aggregates only: no queried name and no client address ever reaches it."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest
from audit_helpers import STATE, T0, FakeClock

from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.ledger import Ledger
from resolver.errors import AuditError

NAMES = [f"secret-child-{i}.tracker-zz{i}.example" for i in range(50)]
CLIENTS = [str(ipaddress.ip_address(f"10.77.{i}.{i + 1}")) for i in range(50)] + [
    f"2001:db8:77::{i:x}" for i in range(1, 50)
]


def _classify(name: str) -> tuple[str, str]:
    """Stand-in for the policy decision: what the server hands the accumulator."""
    return (
        ("blocked", "adult") if name.endswith(("0.example", "5.example")) else ("allowed", "none")
    )


def test_distinctive_queries_leave_no_trace(tmp_path: Path, private_key) -> None:
    rng = random.Random(7)
    clock = FakeClock(T0)
    path = tmp_path / "ledger.jsonl"
    with Ledger.open(path, private_key, site="thcs-b", site_kind="school", instance="gw1") as led:
        acc = PeriodAccumulator(clock=clock)
        for _hour in range(3):
            for _ in range(500):
                name, client = rng.choice(NAMES), rng.choice(CLIENTS)
                action, category = _classify(name)
                profile = "under16" if client.startswith("10.77.1") else "school"
                acc.add(action, category, profile)
            clock.now = acc.period_end
            counts = acc.roll()
            assert counts is not None
            led.append(counts, STATE)
    data = path.read_bytes()
    assert data.count(b"\n") == 3 and b'"blocked"' in data
    for needle in NAMES + CLIENTS + ["secret-child", "tracker-zz", "10.77.", "2001:db8"]:
        assert needle.encode() not in data, needle


@pytest.mark.parametrize("leak", ["secret-child-1.example", "10.77.1.2", "2001:db8::1"])
def test_a_caller_that_passes_a_name_or_address_is_refused(
    tmp_path: Path, private_key, leak: str
) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "ledger.jsonl"
    with Ledger.open(path, private_key, site="thcs-b", site_kind="school", instance="gw1") as led:
        acc = PeriodAccumulator(clock=clock)
        acc.add("blocked", leak, "school")
        clock.now = acc.period_end
        counts = acc.roll()
        assert counts is not None
        with pytest.raises(AuditError, match="not a label"):
            led.append(counts, STATE)
        acc.add_safe_search(leak)
        clock.now = acc.period_end
        counts = acc.roll()
        assert counts is not None
        with pytest.raises(AuditError, match="not a label"):
            led.append(counts, STATE)
    assert leak.encode() not in path.read_bytes()
