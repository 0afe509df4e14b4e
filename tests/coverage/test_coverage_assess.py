"""Coverage from real signed ledgers: live, stale, tampered, missing, old index, partial ISP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coverage_helpers import HOUR, T0, inline_key, site_key, write_ledger

from resolver.coverage.assess import assess
from resolver.coverage.registry import load_registry
from resolver.coverage.render import headline_text, render_csv
from resolver.coverage.status import CoveragePolicy, Headline

NOW = T0 + 24 * HOUR + 1800  # half an hour after the last full period


def _tamper(path: Path, line: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[line])
    obj["answers"]["blocked"]["adult"]["school"] = 0
    obj["queries"] -= 5
    lines[line] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.fixture
def province(tmp_path: Path) -> Path:
    """A registry of 5 schools and 3 ISPs with ledgers in tmp_path/ledgers; returns the YAML."""
    led = tmp_path / "ledgers"
    keys = {s: site_key(tmp_path, s) for s in
            ("thpt-ok", "thcs-stale", "th-tampered", "mn-missing", "thpt-oldidx",
             "isp-ok", "isp-partial", "isp-inline")}  # fmt: skip
    full = range(24)
    write_ledger(led / "thpt-ok.jsonl", keys["thpt-ok"], "thpt-ok", "school", "gw1", full)
    write_ledger(led / "thcs-stale.jsonl", keys["thcs-stale"], "thcs-stale", "school", "gw1",
                 range(10))  # fmt: skip
    write_ledger(led / "th-tampered.jsonl", keys["th-tampered"], "th-tampered", "school", "gw1",
                 full)  # fmt: skip
    _tamper(led / "th-tampered.jsonl", 20)
    write_ledger(led / "sub" / "thpt-oldidx.jsonl", keys["thpt-oldidx"], "thpt-oldidx",
                 "school", "gw1", full, index_time=T0 - 5 * 24 * HOUR)  # fmt: skip
    for inst in ("a", "b"):
        write_ledger(led / f"isp-ok-{inst}.jsonl", keys["isp-ok"], "isp-ok", "isp", inst, full)
    write_ledger(led / "isp-partial-a.jsonl", keys["isp-partial"], "isp-partial", "isp", "a", full)
    write_ledger(led / "isp-partial-b.jsonl", keys["isp-partial"], "isp-partial", "isp", "b",
                 range(12))  # fmt: skip
    write_ledger(led / "isp-inline.jsonl", keys["isp-inline"], "isp-inline", "isp", "r1", full)
    entries = [
        {"id": s, "name": s.upper(), "kind": "isp" if s.startswith("isp") else "school",
         "commune": "Phường Vinh Phú", "public_key": f"keys/{s}/audit.pub",
         "instances": 2 if s in ("isp-ok", "isp-partial") else 1}
        for s in keys
    ]  # fmt: skip
    entries[-1]["public_key"] = inline_key(keys["isp-inline"])
    registry = tmp_path / "sites.yaml"
    registry.write_text(json.dumps({"sites": entries}, ensure_ascii=False), encoding="utf-8")
    return registry


def test_coverage_numbers_are_exact(province: Path) -> None:
    sites = load_registry(province)
    statuses = assess(sites, CoveragePolicy(now=NOW), ledgers=province.parent / "ledgers")
    by_id = {s.site.id: s for s in statuses}
    assert {i for i, s in by_id.items() if s.covered} == {"thpt-ok", "isp-ok", "isp-inline"}
    assert Headline.of(statuses) == Headline(schools=(1, 5), isps=(2, 3))
    assert headline_text(Headline.of(statuses)) == (
        "được bảo vệ: trường học 1/5 (20.0%), nhà mạng 2/3 (66.7%) / "
        "covered: schools 1/5 (20.0%), ISPs 2/3 (66.7%)"
    )
    # stale: no live instance, so no index in force to vouch for; it did answer queries
    assert by_id["thcs-stale"].reasons == ("live instances 0/1", "index not current")
    assert by_id["thcs-stale"].evidence.last_report == T0 + 10 * HOUR
    tampered = by_id["th-tampered"].evidence
    assert not tampered.valid and tampered.signature.startswith("BROKEN th-tampered.jsonl:21:")
    assert by_id["mn-missing"].evidence.signature == "missing"
    assert by_id["thpt-oldidx"].reasons == ("index not current",)
    assert by_id["thpt-oldidx"].evidence.index_age == 5 * 24 * HOUR + 24 * HOUR
    assert by_id["isp-partial"].reasons == ("live instances 1/2",)
    ok = by_id["isp-ok"].evidence
    # the 24 h window at NOW covers periods ending after T0 + 1800: all 24 hours, 2 instances
    assert (ok.live_instances, ok.queries, ok.blocked, ok.index_age) == (2, 5040, 240, 24 * HOUR)


def test_csv_has_every_site(province: Path) -> None:
    sites = load_registry(province)
    text = render_csv(assess(sites, CoveragePolicy(now=NOW), ledgers=province.parent / "ledgers"))
    lines = text.splitlines()
    assert lines[0].startswith("site,name,kind,commune,covered,live,last_report")
    assert len(lines) == 1 + 8
    assert lines[1].startswith("thpt-ok,THPT-OK,school,Phường Vinh Phú,yes,1/1,"
                               "2025-11-29T00:00:00Z,24.0,120,2520,valid")  # fmt: skip


def test_window_and_thresholds_move_the_verdict(province: Path) -> None:
    sites = load_registry(province)
    later = assess(sites, CoveragePolicy(now=NOW + 2 * HOUR), ledgers=province.parent / "ledgers")
    assert not any(s.covered for s in later)  # nobody reported for 2.5 h
    lax = CoveragePolicy(now=NOW, max_index_age=30 * 24 * HOUR)
    got = {s.site.id for s in assess(sites, lax, ledgers=province.parent / "ledgers") if s.covered}
    assert got == {"thpt-ok", "thpt-oldidx", "isp-ok", "isp-inline"}
