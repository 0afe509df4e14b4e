"""A push notes what the collector acknowledged beside the ledger, for the school's console."""

from __future__ import annotations

import time
from pathlib import Path

from collector_helpers import T0, FakeClock, keys, running, write_ledger

from resolver.audit.acks import acks_path, load_acks
from resolver.audit.keys import load_public_key
from resolver.collector.api import make_app
from resolver.collector.db import Database
from resolver.collector.ingest import enroll
from resolver.report_push import push, session


def test_a_push_keeps_the_acks_and_when_beside_the_ledger(db: Database, tmp_path: Path) -> None:
    private, public = keys(tmp_path / "a")
    enroll(db, "thpt-a", load_public_key(public), T0)
    ledger = tmp_path / "ledger" / "a.jsonl"
    ledger.parent.mkdir()
    write_ledger(ledger, private, "thpt-a", 3)
    assert load_acks(ledger) is None  # never pushed
    before = int(time.time())
    with running(make_app(Database(db.url), FakeClock(T0))) as base:
        outcome = push(ledger, "thpt-a", base, session())
    assert outcome.acks == {"gw1": 2}
    known = load_acks(ledger)
    assert known is not None and known[0] == {"gw1": 2} and known[1] >= before
    assert sorted(p.name for p in ledger.parent.iterdir()) == ["a.jsonl", "a.jsonl.acks.json"]
    acks_path(ledger).write_text("{torn")
    assert load_acks(ledger) is None  # unreadable: "not known", never an error
