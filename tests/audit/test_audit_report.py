"""Reports: exact CSV totals per site, bucket and category; the HTML page is offline and drawn."""

from __future__ import annotations

import csv
import io
import re

from audit_helpers import T0

from resolver.audit.report import build_report, load_ledgers, render_csv
from resolver.audit.report_html import render_html


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_hourly_csv_is_exact(make_ledger, public_key) -> None:
    path = make_ledger(hours=3)
    report = build_report(load_ledgers([path], [public_key]), T0, T0 + 3 * 3600)
    rows = _rows(render_csv(report))
    got = [(r["period_start"], r["category"], r["blocked"], r["queries"]) for r in rows]
    assert got == [
        ("2025-11-28T00:00:00Z", "(all)", "3", "103"),
        ("2025-11-28T00:00:00Z", "adult", "3", ""),
        ("2025-11-28T01:00:00Z", "(all)", "4", "105"),
        ("2025-11-28T01:00:00Z", "adult", "3", ""),
        ("2025-11-28T01:00:00Z", "gambling", "1", ""),
        ("2025-11-28T02:00:00Z", "(all)", "5", "107"),
        ("2025-11-28T02:00:00Z", "adult", "3", ""),
        ("2025-11-28T02:00:00Z", "gambling", "2", ""),
    ]
    assert {r["site"] for r in rows} == {"thpt-a"} and {r["site_kind"] for r in rows} == {"school"}


def test_range_and_daily_buckets_over_two_sites(make_ledger, public_key) -> None:
    a = make_ledger("a.jsonl", hours=6, site="thpt-a")
    b = make_ledger("b.jsonl", hours=2, site="thcs-b")
    report = build_report(load_ledgers([a, b], [public_key]), T0 + 3600, T0 + 5 * 3600, "day")
    rows = [r for r in _rows(render_csv(report)) if r["category"] == "(all)"]
    # a: hours 1..4 -> blocks 3+h each = 4+5+6+7, queries 100+h+3+h = 105+107+109+111
    assert [(r["site"], r["blocked"], r["queries"]) for r in rows] == [
        ("thcs-b", "4", "105"),
        ("thpt-a", "22", "432"),
    ]


def test_broken_ledger_counts_only_its_valid_prefix(make_ledger, public_key) -> None:
    path = make_ledger(hours=4)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))  # drop hour 2
    report = build_report(load_ledgers([path], [public_key]), T0, T0 + 86400)
    assert [c.queries for c in report.cells] == [103, 105]
    html = render_html(report, T0 + 86400)
    assert "BROKEN at line 3" in html


def test_html_is_offline_and_has_charts(make_ledger, public_key) -> None:
    path = make_ledger(hours=5)
    html = render_html(build_report(load_ledgers([path], [public_key]), T0, T0 + 6 * 3600), T0)
    assert html.count("<svg") == 2 and "signature and chain valid" in html
    assert not re.search(r"<script|<link|https?://(?!www\.w3\.org/2000/svg)", html)
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', html)]
    assert len(heights) >= 9 and all(h > 0 for h in heights)
