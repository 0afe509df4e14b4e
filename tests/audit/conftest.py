"""Fixtures for the audit tests: a site key pair on disk and ledgers built for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from audit_helpers import T0, FakeClock, fill

from resolver.audit.keys import load_private_key, load_public_key, write_keypair
from resolver.audit.ledger import Ledger


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


@pytest.fixture
def make_ledger(tmp_path: Path, private_key) -> Callable[..., Path]:  # type: ignore[no-untyped-def]
    def build(name: str = "site.jsonl", hours: int = 5, site: str = "thpt-a") -> Path:
        path = tmp_path / name
        clock = FakeClock(T0)
        with Ledger.open(path, private_key, site=site, site_kind="school", instance="gw1") as led:
            fill(led, clock, hours)
        return path

    return build
