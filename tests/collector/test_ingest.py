"""The push API against SQLite and a real PostgreSQL: real ledgers in, forgeries and rewrites out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from collector_helpers import T0, FakeClock, keys, running, write_ledger

from resolver.audit.keys import load_public_key
from resolver.collector.api import make_app
from resolver.collector.db import Database
from resolver.collector.ingest import enroll
from resolver.collector.views import incident_counts, tips

NOW = T0 + 6 * 3600


@pytest.fixture
def site_a(tmp_path: Path, db: Database) -> tuple[Path, Path]:
    private, public = keys(tmp_path / "a")
    enroll(db, "thpt-a", load_public_key(public), T0)
    ledger = tmp_path / "a.jsonl"
    write_ledger(ledger, private, "thpt-a", 5)
    return ledger, private


@pytest.fixture
def url(db: Database):  # type: ignore[no-untyped-def]
    with running(make_app(Database(db.url), FakeClock(NOW))) as base:
        yield base + "/api/v1/sites/"


def push(url: str, site: str, lines: list[bytes]) -> requests.Response:
    return requests.post(url + site + "/records", data=b"".join(lines), timeout=10)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_whole_ledger_is_stored_and_pushing_it_again_changes_nothing(url, db, site_a) -> None:
    ledger, _ = site_a
    first = push(url, "thpt-a", lines_of(ledger))
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 5 and first.json()["acks"] == {"gw1": 4}
    again = push(url, "thpt-a", lines_of(ledger))
    assert again.status_code == 409  # seqs 0..3 again are replays; the tip is a plain duplicate
    assert {r["kind"] for r in again.json()["rejected"]} == {"replay"}
    assert push(url, "thpt-a", lines_of(ledger)[-1:]).json()["duplicates"] == 1
    assert requests.get(url + "thpt-a/acks", timeout=10).json()["acks"] == {"gw1": 4}
    (tip,) = tips(db)["thpt-a"]
    assert (tip.state, tip.last_period_end, tip.last_active) == (
        "valid",
        T0 + 5 * 3600,
        T0 + 5 * 3600,
    )


def test_a_record_whose_count_was_edited_is_refused_as_forged(url, db, site_a) -> None:
    ledger, _ = site_a
    lines = lines_of(ledger)
    lines[2] = lines[2].replace(b'"adult":{"school":3}', b'"adult":{"school":0}')
    lines[2] = lines[2].replace(b'"queries":107', b'"queries":104')
    reply = push(url, "thpt-a", lines)
    assert reply.status_code == 409
    assert [r["kind"] for r in reply.json()["rejected"]] == ["forged", "gap"]
    assert reply.json()["acks"] == {"gw1": 1}  # stored up to the record before the forgery
    assert incident_counts(db)["thpt-a"] == {"forged": 1, "gap": 1}


def test_a_record_signed_with_another_sites_key_is_refused(url, db, tmp_path, site_a) -> None:
    other_private, _ = keys(tmp_path / "b")
    fake = tmp_path / "fake.jsonl"
    write_ledger(fake, other_private, "thpt-a", 2)  # right site name, wrong key
    reply = push(url, "thpt-a", lines_of(fake))
    assert reply.status_code == 409
    assert {r["kind"] for r in reply.json()["rejected"]} == {"other-key"}
    assert reply.json()["acks"] == {}
    assert "thpt-a" not in tips(db)  # a stranger cannot mark the site broken either


def test_another_sites_record_cannot_be_pushed_as_this_site(url, db, tmp_path, site_a) -> None:
    private_b, public_b = keys(tmp_path / "b")
    enroll(db, "thpt-b", load_public_key(public_b), T0)
    ledger_b = tmp_path / "b.jsonl"
    write_ledger(ledger_b, private_b, "thpt-b", 1)
    reply = push(url, "thpt-a", lines_of(ledger_b))
    assert [r["kind"] for r in reply.json()["rejected"]] == ["other-site"]


def test_a_replayed_old_record_is_refused_and_counted(url, db, site_a) -> None:
    ledger, _ = site_a
    lines = lines_of(ledger)
    assert push(url, "thpt-a", lines).status_code == 200
    reply = push(url, "thpt-a", [lines[1]])
    assert reply.status_code == 409
    assert reply.json()["rejected"][0]["kind"] == "replay"
    assert incident_counts(db)["thpt-a"] == {"replay": 1}
    assert tips(db)["thpt-a"][0].state == "valid"


def test_a_deleted_tail_is_caught_when_the_site_writes_again(url, db, site_a) -> None:
    ledger, private = site_a
    assert push(url, "thpt-a", lines_of(ledger)).status_code == 200  # seq 0..4 acknowledged
    ledger.write_bytes(b"".join(lines_of(ledger)[:3]))  # the last two records deleted
    write_ledger(ledger, private, "thpt-a", 2, start=T0 + 3 * 3600, blocks=0)
    reply = push(url, "thpt-a", lines_of(ledger)[3:])  # the new seq 3 and 4
    assert reply.status_code == 409
    assert reply.json()["rejected"][0] == {
        "seq": 3, "kind": "rewritten",
        "detail": "seq 3 differs from the record acknowledged before",
    }  # fmt: skip
    assert tips(db)["thpt-a"][0].state == "rewritten"


def test_a_rewritten_middle_breaks_the_link_to_the_acknowledged_chain(url, db, site_a) -> None:
    ledger, private = site_a
    lines = lines_of(ledger)
    assert push(url, "thpt-a", lines[:3]).status_code == 200  # seq 0..2 acknowledged
    ledger.write_bytes(b"".join(lines[:2]))  # seq 2 onwards rewritten with the site's key
    write_ledger(ledger, private, "thpt-a", 3, start=T0 + 2 * 3600, blocks=0)
    reply = push(url, "thpt-a", lines_of(ledger)[3:])  # only what is past the ack
    assert reply.json()["rejected"][0]["kind"] == "broken"
    assert tips(db)["thpt-a"][0].state == "broken"


def test_a_gap_is_refused_with_the_seq_expected(url, db, site_a) -> None:
    ledger, _ = site_a
    lines = lines_of(ledger)
    reply = push(url, "thpt-a", [lines[0], lines[2]])
    assert reply.json()["rejected"] == [
        {"seq": 2, "kind": "gap", "detail": "seq 2 pushed, 1 expected"}
    ]
    assert reply.json()["acks"] == {"gw1": 0}


def test_a_site_not_enrolled_gets_404_and_garbage_a_clear_refusal(url, db, site_a) -> None:
    assert requests.get(url + "thpt-z/acks", timeout=10).status_code == 404
    assert push(url, "thpt-z", [b"{}\n"]).status_code == 404
    assert requests.get(url + "Bad.Site/acks", timeout=10).status_code == 400
    reply = push(url, "thpt-a", [b"not json\n", json.dumps({"seq": 1}).encode() + b"\n"])
    assert [r["kind"] for r in reply.json()["rejected"]] == ["forged", "forged"]


def test_migrations_run_once_and_record_the_schema_version(db) -> None:
    assert db.migrate() == db.migrate() == 4
    with db.tx() as tx:
        versions = tx.run("SELECT version FROM schema_version ORDER BY version")
    assert versions == [(1,), (2,), (3,), (4,)]


def test_two_collectors_on_one_database_take_one_ledger_pushed_to_both_at_once(
    db, site_a
) -> None:  # fmt: skip
    from concurrent.futures import ThreadPoolExecutor

    ledger, _ = site_a
    body = lines_of(ledger)
    with running(make_app(Database(db.url), FakeClock(NOW))) as one, \
            running(make_app(Database(db.url), FakeClock(NOW))) as two:  # fmt: skip
        urls = [one + "/api/v1/sites/", two + "/api/v1/sites/"] * 4
        with ThreadPoolExecutor(len(urls)) as pool:
            replies = list(pool.map(lambda u: push(u, "thpt-a", body), urls))
    assert all(r.status_code in (200, 409) for r in replies), [r.text for r in replies]
    assert sum(r.json()["accepted"] for r in replies) == 5  # stored once, whoever came first
    assert {r.json()["acks"]["gw1"] for r in replies} == {4}
    with db.tx() as tx:
        assert tx.run("SELECT COUNT(*) FROM records") == [(5,)]
