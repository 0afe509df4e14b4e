"""Reports: exact CSV totals per site, bucket and category; the HTML page is offline and drawn."""

from __future__ import annotations

import csv
import io
import re
from zoneinfo import ZoneInfo

from audit_helpers import T0

from resolver.audit.record import iso
from resolver.audit.report import bucket_start, build_report, load_ledgers, next_bucket, render_csv
from resolver.audit.report_html import render_html


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_hourly_csv_is_exact(make_ledger, public_key) -> None:
    path = make_ledger(hours=3)
    report = build_report(load_ledgers([path], {"thpt-a": public_key}), T0, T0 + 3 * 3600)
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
    report = build_report(
        load_ledgers([a, b], {"thpt-a": public_key, "thcs-b": public_key}),
        T0 + 3600,
        T0 + 5 * 3600,
        "day",
    )
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
    report = build_report(load_ledgers([path], {"thpt-a": public_key}), T0, T0 + 86400)
    assert [c.queries for c in report.cells] == [103, 105]
    html = render_html(report, T0 + 86400)
    assert "BROKEN at line 3" in html


def test_html_is_offline_and_has_charts(make_ledger, public_key) -> None:
    path = make_ledger(hours=5)
    html = render_html(
        build_report(load_ledgers([path], {"thpt-a": public_key}), T0, T0 + 6 * 3600), T0
    )
    assert html.count("<svg") == 2 and "signature and chain valid" in html
    assert not re.search(r"<script|<link|https?://(?!www\.w3\.org/2000/svg)", html)
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', html)]
    assert len(heights) >= 9 and all(h > 0 for h in heights)


def test_daily_buckets_follow_the_auditors_time_zone(make_ledger, public_key) -> None:
    # Hours 0..19 UTC of 2025-11-28 are 07:00 on the 28th to 02:00 on the 29th in Hanoi: the
    # local day splits them 17 / 3, where UTC days would keep them together.
    hanoi = ZoneInfo("Asia/Ho_Chi_Minh")
    ledgers = load_ledgers([make_ledger(hours=20)], {"thpt-a": public_key})
    report = build_report(ledgers, T0 - 7 * 3600, T0 + 41 * 3600, "day", hanoi)
    rows = [r for r in _rows(render_csv(report)) if r["category"] == "(all)"]
    assert [(r["period_start"], r["period_end"], r["blocked"], r["queries"]) for r in rows] == [
        ("2025-11-28T00:00:00+07:00", "2025-11-29T00:00:00+07:00",
         str(sum(3 + h for h in range(17))), str(sum(103 + 2 * h for h in range(17)))),
        ("2025-11-29T00:00:00+07:00", "2025-11-30T00:00:00+07:00",
         str(sum(3 + h for h in range(17, 20))), str(sum(103 + 2 * h for h in range(17, 20)))),
    ]  # fmt: skip
    assert report.bucket_starts() == [T0 - 7 * 3600, T0 + 17 * 3600]
    utc = build_report(ledgers, T0, T0 + 48 * 3600, "day")
    assert [c.queries for c in utc.cells] == [sum(103 + 2 * h for h in range(20))]
    html = render_html(report, T0)
    # The chart title names the zone its axis is drawn in, not UTC.
    assert "mỗi ngày / day (Asia/Ho_Chi_Minh, UTC+07:00), mọi điểm / all sites" in html
    assert "(UTC)" not in html


def test_local_days_around_a_daylight_saving_change() -> None:
    # Europe/Berlin, 2026-03-29: the local day is 23 hours long.
    berlin = ZoneInfo("Europe/Berlin")
    start = bucket_start(1_774_750_000, 86400, berlin)  # 2026-03-29 ~02:06 UTC
    assert iso(start, berlin) == "2026-03-29T00:00:00+01:00"
    assert next_bucket(start, 86400, berlin) - start == 23 * 3600
    assert iso(next_bucket(start, 86400, berlin), berlin) == "2026-03-30T00:00:00+02:00"
