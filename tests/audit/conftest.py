"""Fixtures for the audit tests: a site key pair on disk, a fake clock, ledgers built for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.keys import load_private_key, load_public_key, write_keypair
from resolver.audit.ledger import FilterState, Ledger

T0 = 1_764_288_000  # 2025-11-28T00:00:00Z, an hour boundary
STATE = FilterState("sha256:idx0001", T0 - 3600, "sha256:pol0001", "0.1.0")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    write_keypair(out)
    return out


@pytest.fixture
def private_key(keydir: Path):  # type: ignore[no-untyped-def]
    return load_private_key(keydir / "audit.key")


@pytest.fixture
def public_key(keydir: Path):  # type: ignore[no-untyped-def]
    return load_public_key(keydir / "audit.pub")


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


@pytest.fixture
def make_ledger(tmp_path: Path, private_key) -> Callable[..., Path]:  # type: ignore[no-untyped-def]
    def build(name: str = "site.jsonl", hours: int = 5, site: str = "thpt-a") -> Path:
        path = tmp_path / name
        clock = FakeClock(T0)
        with Ledger.open(path, private_key, site=site, site_kind="school", instance="gw1") as led:
            fill(led, clock, hours)
        return path

    return build
