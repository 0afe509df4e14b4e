"""The audit report as one offline HTML page: headline, charts in inline SVG, tables."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from resolver.audit.htmlpage import cell, kpis, page, table
from resolver.audit.record import iso
from resolver.audit.report import Report
from resolver.audit.svg import share_bars, stacked_bars


def _label(ts: int, bucket: int, tz: tzinfo = UTC) -> str:
    moment = datetime.fromtimestamp(ts, tz)
    return moment.strftime("%m-%d %H:00" if bucket < 86400 else "%Y-%m-%d")


def _over_time(report: Report) -> str:
    starts = report.bucket_starts()
    index = {b: i for i, b in enumerate(starts)}
    series: dict[str, list[int]] = {c: [0] * len(starts) for c in report.categories()}
    for c in report.cells:
        for cat, n in c.blocks:
            series[cat][index[c.start]] += n
    unit = "hour" if report.bucket < 86400 else "day"
    title = f"Blocks by category per {unit} (UTC), all sites"
    return stacked_bars([_label(b, report.bucket, report.tz) for b in starts], series, title)


def _ledger_rows(report: Report) -> list[list[str]]:
    rows = []
    for r in report.ledgers:
        if r.problem:
            status, css = f"BROKEN at {r.problem}", "bad"
        else:
            status, css = ("signature and chain valid" if r.signed else "chain valid, no key given"), "ok"  # fmt: skip
        sites = sorted({rec.site for rec in r.records})
        rows.append(
            [cell(r.path.name), cell(", ".join(sites)), cell(len(r.records)), cell(status, css)]
        )
    return rows


def _site_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    cats = report.categories()
    per_site: dict[tuple[str, str], list[int]] = {}
    for c in report.cells:
        row = per_site.setdefault((c.site, c.site_kind), [0] * (len(cats) + 2))
        row[0] += c.queries
        row[1] += c.blocked
        for cat, n in c.blocks:
            row[2 + cats.index(cat)] += n
    rows = [
        [cell(s), cell(k), *(cell(v) for v in vals)] for (s, k), vals in sorted(per_site.items())
    ]
    return ["site", "kind", "queries", "blocked", *cats], rows


def render_html(report: Report, now: int) -> str:
    """The whole page; ``now`` is only printed as the generation time."""
    totals = report.category_totals()
    queries = sum(c.queries for c in report.cells)
    blocked = sum(totals.values())
    sites = {c.site for c in report.cells}
    header, rows = _site_rows(report)
    body = "\n".join([
        kpis([("sites reporting", f"{len(sites):,}"), ("queries", f"{queries:,}"),
              ("blocked", f"{blocked:,}"),
              ("blocked share", f"{100 * blocked / queries:.2f}%" if queries else "-")]),
        "<h2>Blocks over time</h2>", _over_time(report),
        "<h2>Share of blocks by category</h2>",
        share_bars(sorted(totals.items()), "Share of all blocks by category") if totals
        else "<p>No blocks in this range.</p>",
        "<h2>Per site</h2>", table(header, rows),
        "<h2>Ledgers</h2>", table(["file", "site", "records", "verification"], _ledger_rows(report)),
    ])  # fmt: skip
    meta = (
        f"Period {iso(report.start, report.tz)} to {iso(report.end, report.tz)} ({report.tz}). "
        "Aggregate counts only: no client address or domain name is recorded. "
        f"Generated {iso(now, report.tz)} by lachan."
    )
    return page("lachan audit report", meta, body)
