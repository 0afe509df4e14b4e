"""The push API takes records carrying the optional ``temporary_allows`` count (SQLite and a real
PostgreSQL): its signature covers the field, so an edited count is refused as forged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import requests
from collector_helpers import STATE, T0, FakeClock, keys, running

from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.canonical import canonical_bytes
from resolver.audit.keys import load_private_key, load_public_key
from resolver.audit.ledger import Ledger
from resolver.collector.api import make_app
from resolver.collector.db import Database
from resolver.collector.ingest import enroll
from resolver.collector.views import incident_counts, tips


def _ledger(path: Path, key: Path, allows: list[dict[str, int]]) -> list[bytes]:
    """One hourly record per entry of ``allows`` (an empty entry: a record without the field)."""
    clock = FakeClock(T0)
    with Ledger.open(path, load_private_key(key), site="thcs-c", site_kind="school",
                     instance="gw1") as ledger:  # fmt: skip
        acc = PeriodAccumulator(clock=clock)
        for granted in allows:
            acc.add("blocked", "gambling", "school", 4)
            clock.now = acc.period_end
            counts = acc.roll()
            assert counts is not None
            ledger.append(replace(counts, temporary_allows=granted), STATE)
    return path.read_bytes().splitlines(keepends=True)


def test_records_with_temporary_allows_are_stored_and_an_edited_count_is_forged(
    db: Database, tmp_path: Path
) -> None:
    private, public = keys(tmp_path / "c")
    enroll(db, "thcs-c", load_public_key(public), T0)
    lines = _ledger(tmp_path / "c.jsonl", private, [{}, {"gambling": 2}, {"games": 1}, {}])
    assert b'"temporary_allows":{"format":1,"granted":{"gambling":2}}' in lines[1]
    edited = json.loads(lines[2])
    edited["temporary_allows"]["granted"]["games"] = 3
    with running(make_app(Database(db.url), FakeClock(T0 + 5 * 3600))) as base:
        url = base + "/api/v1/sites/thcs-c/records"
        first = requests.post(url, data=b"".join(lines[:2]), timeout=10)
        assert first.status_code == 200, first.text
        assert first.json()["accepted"] == 2
        forged = requests.post(url, data=canonical_bytes(edited) + b"\n", timeout=10)
        assert forged.status_code == 409
        assert [r["kind"] for r in forged.json()["rejected"]] == ["forged"]
        rest = requests.post(url, data=b"".join(lines[2:]), timeout=10)
        assert rest.status_code == 200 and rest.json()["acks"] == {"gw1": 3}, rest.text
    assert incident_counts(db)["thcs-c"] == {"forged": 1}
    (tip,) = tips(db)["thcs-c"]
    assert tip.state == "valid" and tip.last_seq == 3
