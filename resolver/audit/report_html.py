"""The audit report as one offline HTML page: headline, charts in inline SVG, tables."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from resolver.audit.htmlpage import cell, kpis, page, table
from resolver.audit.record import iso
from resolver.audit.report import Report
from resolver.audit.svg import share_bars, stacked_bars
from resolver.audit.verify import VerifyResult


def _label(ts: int, bucket: int, tz: tzinfo = UTC) -> str:
    moment = datetime.fromtimestamp(ts, tz)
    return moment.strftime("%m-%d %H:00" if bucket < 86400 else "%Y-%m-%d")


def zone_name(report: Report) -> str:
    """The zone the axis labels are in, as the title names it (UTC+07:00 style offset too)."""
    offset = datetime.fromtimestamp(report.start, report.tz).strftime("%z")
    label = "UTC" if offset == "+0000" else f"UTC{offset[:3]}:{offset[3:]}"
    return label if str(report.tz) in ("UTC", label) else f"{report.tz}, {label}"


def _over_time(report: Report) -> str:
    starts = report.bucket_starts()
    index = {b: i for i, b in enumerate(starts)}
    series: dict[str, list[int]] = {c: [0] * len(starts) for c in report.categories()}
    for c in report.cells:
        for cat, n in c.blocks:
            series[cat][index[c.start]] += n
    unit = "giờ / hour" if report.bucket < 86400 else "ngày / day"
    title = f"Chặn theo danh mục mỗi {unit} ({zone_name(report)}), mọi điểm / all sites"
    return stacked_bars([_label(b, report.bucket, report.tz) for b in starts], series, title)


def _status(report: Report, r: VerifyResult) -> tuple[str, str]:
    if r.problem:
        return f"HỎNG / BROKEN at {r.problem}", "bad"
    if not r.signed:
        # Without the site's key anyone could have written a consistent chain: never green.
        return "chưa xác minh: không có khoá của điểm / unverified: no key for this site", "warn"
    copies = report.copies.get(str(r.path), 0)
    if copies:
        return (
            f"bản sao, đã tính một lần / copy of another ledger: {copies} records counted once",
            "",
        )
    return "chữ ký và chuỗi hợp lệ / signature and chain valid", "ok"


def _ledger_rows(report: Report) -> list[list[str]]:
    rows = []
    for r in report.ledgers:
        status, css = _status(report, r)
        sites = sorted({rec.site for rec in r.records})
        rows.append(
            [cell(r.path.name), cell(", ".join(sites)), cell(len(r.records)), cell(status, css)]
        )
    return rows


def _site_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    cats = report.categories()
    per_site: dict[tuple[str, str], list[int]] = {}
    for c in report.cells:
        row = per_site.setdefault((c.site, c.site_kind), [0] * (len(cats) + 4))
        row[0] += c.queries
        row[1] += c.blocked
        row[2] += c.bypass
        row[-1] += c.allowed  # last: the categories are the blocks' columns
        for cat, n in c.blocks:
            row[3 + cats.index(cat)] += n
    rows = [
        [cell(s), cell(k), *(cell(v) for v in vals)] for (s, k), vals in sorted(per_site.items())
    ]
    header = ["điểm / site", "loại / kind", "truy vấn / queries", "bị chặn / blocked",
              "vượt lọc / bypass attempts", *cats, "mở tạm thời / temporary allows"]  # fmt: skip
    return header, rows


def _allows_line(report: Report) -> str:
    """Temporary allows per category: how often teachers opened what the filter blocked."""
    totals: dict[str, int] = {}
    for c in report.cells:
        for cat, n in c.allows:
            totals[cat] = totals.get(cat, 0) + n
    if not totals:
        return "<p>Không có trang nào được mở tạm thời / No temporary allows in this range.</p>"
    parts = ", ".join(f"{cat}: {n:,}" for cat, n in sorted(totals.items()))
    return f"<p>Mở tạm thời theo danh mục / Temporary allows by category: {parts}</p>"


def render_html(report: Report, now: int) -> str:
    """The whole page, Vietnamese first; ``now`` is only printed as the generation time."""
    totals = report.category_totals()
    queries = sum(c.queries for c in report.cells)
    blocked = sum(totals.values())
    bypass = sum(c.bypass for c in report.cells)
    allowed = sum(c.allowed for c in report.cells)
    sites = {c.site for c in report.cells}
    header, rows = _site_rows(report)
    body = "\n".join([
        kpis([("điểm báo cáo / sites reporting", f"{len(sites):,}"),
              ("truy vấn / queries", f"{queries:,}"),
              ("bị chặn (nội dung) / blocked (content)", f"{blocked:,}"),
              ("tỉ lệ chặn / blocked share", f"{100 * blocked / queries:.2f}%" if queries else "-"),
              ("vượt lọc / bypass attempts", f"{bypass:,}"),
              ("mở tạm thời / temporary allows", f"{allowed:,}")]),
        "<h2>Chặn theo thời gian / Blocks over time</h2>", _over_time(report),
        "<h2>Tỉ lệ chặn theo danh mục / Share of blocks by category</h2>",
        share_bars(sorted(totals.items()), "Tỉ lệ chặn theo danh mục / Share of blocks by category")
        if totals else "<p>Không có lượt chặn / No blocks in this range.</p>",
        "<p>Vượt lọc (DoH canary, relay, DDR) là các lần cố vượt bộ lọc, không tính là chặn nội "
        "dung / Bypass attempts (DoH canary, relays, DDR) are counted apart from content blocks.</p>",
        "<h2>Theo điểm / Per site</h2>", table(header, rows),
        _allows_line(report),
        "<h2>Sổ kiểm toán / Ledgers</h2>",
        table(["tệp / file", "điểm / site", "bản ghi / records", "xác minh / verification"],
              _ledger_rows(report)),
    ])  # fmt: skip
    meta = (
        f"Kỳ / Period {iso(report.start, report.tz)} – {iso(report.end, report.tz)} "
        f"({zone_name(report)}). Chỉ số liệu tổng hợp: không có địa chỉ máy khách hay tên miền / "
        "Aggregate counts only: no client address or domain name is recorded. "
        f"Tạo lúc / Generated {iso(now, report.tz)} bởi / by lachan."
    )
    return page("Báo cáo kiểm toán lachan / lachan audit report", meta, body, lang="vi")
