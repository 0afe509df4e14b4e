"""The ledger's optional ``temporary_allows`` field: counted per category from the allows' log,
signed like the rest, optional so older records still verify, and never naming a site."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from audit_helpers import STATE, T0, FakeClock, fill
from click.testing import CliRunner

from resolver.allows import AllowStore
from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.canonical import canonical_bytes
from resolver.audit.ledger import Ledger
from resolver.audit.record import record_from_json
from resolver.audit.report import build_report, load_ledgers, render_csv
from resolver.audit.trail import AuditTrail
from resolver.audit.verify import verify_ledger
from resolver.commands.audit import audit
from resolver.coverage.ledgers import ledger_evidence
from resolver.coverage.registry import Site
from resolver.coverage.status import CoveragePolicy
from resolver.errors import AuditError

SITE_NAME = "secret-lesson.example"  # must never reach a ledger
TEACHER = "co-giao-lan"


def _allows_log(state: Path, clock: FakeClock) -> AllowStore:
    """Three allows in the first hour (two gambling, one games), one in the second, one revoke."""
    store = AllowStore(state, clock)
    for offset, name, category in [(60, SITE_NAME, "gambling"), (120, "b.example", "gambling"),
                                   (600, "c.example", "games"), (3700, "d.example", "games")]:  # fmt: skip
        clock.now = T0 + offset
        store.add(name, "school", 1800, "bài học", TEACHER, category)
    clock.now = T0 + 700
    store.revoke("c.example", None, TEACHER)  # a revocation is not a grant
    return store


def _ledger_with_allows(tmp_path: Path) -> Path:
    clock = FakeClock(T0)
    store = _allows_log(tmp_path / "state", FakeClock(T0))
    path = tmp_path / "ledgers" / "site.jsonl"
    path.parent.mkdir()
    trail = AuditTrail.open(path, tmp_path / "keys" / "audit.key", site="thpt-a",
                            site_kind="school", instance="gw1", state=lambda: STATE, clock=clock,
                            allows=store.granted)  # fmt: skip
    for hour in range(3):
        trail.counts.add("blocked", "gambling", "school", 5 + hour)
        clock.now = T0 + (hour + 1) * 3600
        assert trail.tick() is not None
    trail.close()
    return path


def test_the_log_counts_grants_per_category_in_a_period(tmp_path: Path) -> None:
    store = _allows_log(tmp_path, FakeClock(T0))
    assert store.granted(T0, T0 + 3600) == {"gambling": 2, "games": 1}
    assert store.granted(T0 + 3600, T0 + 7200) == {"games": 1}
    assert store.granted(T0 + 7200, T0 + 9000) == {}
    with store.log_path.open("a") as log:  # an older line without a category, a bad one, a torn one
        log.write(json.dumps({"at": T0 + 30, "action": "allow", "name": "x.example"}) + "\n")
        log.write(json.dumps({"at": T0 + 31, "action": "allow", "category": "a.b"}) + "\n")
        log.write('{"at": 1, "act')
    assert store.granted(T0, T0 + 3600) == {"gambling": 2, "games": 1, "none": 2}


def test_records_carry_the_signed_count_and_verify(tmp_path: Path, keydir: Path,
                                                   public_key) -> None:  # fmt: skip
    path = _ledger_with_allows(tmp_path)
    lines = path.read_bytes().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["temporary_allows"] == {"format": 1, "granted": {"gambling": 2, "games": 1}}
    assert records[1]["temporary_allows"] == {"format": 1, "granted": {"games": 1}}
    assert "temporary_allows" not in records[2]  # nothing granted: the field is left out
    result = verify_ledger(path, public_key)
    assert result.ok, result.problem
    assert result.temporary_allows() == {"gambling": 2, "games": 2}
    data = path.read_bytes()
    for needle in (SITE_NAME, "b.example", TEACHER, "bài học", "until"):
        assert needle.encode() not in data, needle


def test_a_changed_count_breaks_the_signature(tmp_path: Path, keydir: Path, public_key) -> None:
    path = _ledger_with_allows(tmp_path)
    lines = path.read_bytes().splitlines()
    first = json.loads(lines[0])
    first["temporary_allows"]["granted"]["gambling"] = 1  # hiding an allow
    lines[0] = canonical_bytes(first)
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = verify_ledger(path, public_key)
    assert result.problem is not None and result.problem.line == 1
    assert "signature does not verify" in result.problem.message


def test_records_without_the_field_are_unchanged_and_still_verify(
    tmp_path: Path, private_key, public_key
) -> None:
    path = tmp_path / "old.jsonl"
    with Ledger.open(path, private_key, site="thpt-a", site_kind="school", instance="gw1") as led:
        fill(led, FakeClock(T0), 3)
    assert b"temporary_allows" not in path.read_bytes()  # what earlier versions wrote
    assert verify_ledger(path, public_key).ok


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"format": 2, "granted": {"games": 1}}, "format: 2 is not 1"),
        ({"granted": {"games": 1}}, "expected {format, granted}"),
        ({"format": 1, "granted": {"x.example": 1}}, "not a label"),
        ({"format": 1, "granted": {"games": 0}}, "counts must be positive"),
        ({"format": 1, "granted": {"games": -1}}, "not a non-negative integer"),
        ({"format": 1, "granted": {}}, "not a non-empty object"),
        ({"format": 1, "granted": {"games": 1}, "names": ["a"]}, "expected {format, granted}"),
    ],
)
def test_a_malformed_or_newer_field_is_refused_by_name(
    tmp_path: Path, make_ledger, field: object, message: str
) -> None:
    obj = json.loads(make_ledger(hours=1).read_bytes().splitlines()[0])
    obj["temporary_allows"] = field
    with pytest.raises(AuditError, match="temporary_allows") as caught:
        record_from_json(obj)
    assert message in str(caught.value)


def test_the_cli_report_and_coverage_show_the_counts(tmp_path: Path, keydir: Path,
                                                     public_key) -> None:  # fmt: skip
    path = _ledger_with_allows(tmp_path)
    done = CliRunner().invoke(audit, ["verify", str(path), "--public-key",
                                      str(keydir / "audit.pub")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"{path}: temporary allows granted: gambling 2, games 2" in done.output
    report = build_report(load_ledgers([path], {"thpt-a": public_key}), T0, T0 + 3 * 3600, "hour")
    rows = render_csv(report).splitlines()
    assert rows[0].endswith(",bypass_attempts,temporary_allows")
    hour0 = [r for r in rows if ",2025-11-28T00:00:00Z," in r]
    assert hour0 == [
        "thpt-a,school,2025-11-28T00:00:00Z,2025-11-28T01:00:00Z,(all),5,5,0,3",
        "thpt-a,school,2025-11-28T00:00:00Z,2025-11-28T01:00:00Z,gambling,5,,,2",
        "thpt-a,school,2025-11-28T00:00:00Z,2025-11-28T01:00:00Z,games,0,,,1",
    ]
    site = Site("thpt-a", "THPT A", "school", "", public_key, 1, None)
    policy = CoveragePolicy(now=T0 + 3 * 3600, window=4 * 3600)
    assert ledger_evidence(site, [path], policy).temporary_allows == 4


def test_an_accumulator_merge_adds_allows(tmp_path: Path) -> None:
    acc = PeriodAccumulator(clock=FakeClock(T0))
    counts = acc.close()
    one = replace(counts, temporary_allows={"games": 1})
    two = replace(counts, temporary_allows={"games": 2, "gambling": 1})
    assert one.merged(two).temporary_allows == {"games": 3, "gambling": 1}


def test_an_allow_in_the_last_second_before_a_stop_is_counted(tmp_path: Path, keydir: Path) -> None:
    clock = FakeClock(T0 + 100)
    store = AllowStore(tmp_path / "state", FakeClock(T0 + 160.3))
    store.add("x.example", "school", 1800, "bài học", TEACHER, "games")
    trail = AuditTrail.open(tmp_path / "l.jsonl", keydir / "audit.key", site="thpt-a",
                            site_kind="school", instance="gw1", state=lambda: STATE, clock=clock,
                            allows=store.granted)  # fmt: skip
    clock.now = T0 + 160.6
    last = trail.close()
    assert last.period_end == T0 + 161 and last.temporary_allows == {"games": 1}
