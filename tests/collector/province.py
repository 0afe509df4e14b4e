"""A small province for the dashboard tests: three schools and an ISP, pushed for real."""

from __future__ import annotations

from pathlib import Path

from collector_helpers import STATE, T0, keys, write_ledger

from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.keys import load_private_key, load_public_key
from resolver.audit.ledger import Ledger
from resolver.collector.auth import add_user
from resolver.collector.db import Database
from resolver.collector.ingest import enroll, ingest
from resolver.coverage.registry import Site

NOW = T0 + 5 * 3600 + 600  # ten minutes after the last hourly record
PASSWORD = "mật-khẩu-đủ-dài"
SITES = (
    Site("thpt-a", "THPT Lê Hồng Phong", "school", "Phường Bến Nghé", None, 1, None, "Quận 1"),
    Site("thpt-b", "THPT Trần Phú", "school", "Phường Bến Nghé", None, 1, None, "Quận 1"),
    Site("thcs-c", "THCS Nguyễn Du", "school", "Xã Tân Nhựt", None, 1, None, "Huyện Bình Chánh"),
    Site("isp-x", "Nhà mạng X", "isp", "Phường Bến Nghé", None, 1, None, "Quận 1"),
)


def _bypass_ledger(path: Path, key: Path, site: str) -> None:
    """Five hourly records, each 10 adult blocks and 4 anti-bypass (DoH canary) blocks."""
    clock = [float(T0)]
    with Ledger.open(path, load_private_key(key), site=site, site_kind="isp",
                     instance="ns1") as ledger:  # fmt: skip
        acc = PeriodAccumulator(clock=lambda: clock[0])
        for _ in range(5):
            acc.add("allowed", "none", "isp-default", 50)
            acc.add("blocked", "adult", "isp-default", 10)
            acc.add("blocked", "bypass", "isp-default", 4)
            clock[0] = acc.period_end
            counts = acc.roll()
            assert counts is not None
            ledger.append(counts, STATE)


def build(db: Database, tmp: Path) -> None:
    """thpt-a valid and covered, thpt-b rewritten, thcs-c never reported, isp-x covered."""
    for site in ("thpt-a", "thpt-b", "isp-x"):
        private, public = keys(tmp / site)
        enroll(db, site, load_public_key(public), T0)
        ledger = tmp / f"{site}.jsonl"
        if site == "isp-x":
            _bypass_ledger(ledger, private, site)
        else:
            write_ledger(ledger, private, site, 5)
        assert ingest(db, site, ledger.read_bytes().splitlines(), NOW).accepted == 5
    other = tmp / "thpt-b-rewritten.jsonl"
    write_ledger(other, tmp / "thpt-b" / "audit.key", "thpt-b", 1, blocks=9)
    assert ingest(db, "thpt-b", other.read_bytes().splitlines(), NOW).rejected
    add_user(db, "kiem-tra", "auditor", PASSWORD)
    add_user(db, "xem", "viewer", PASSWORD)
