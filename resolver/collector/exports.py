"""Exports for the periodic and annual reports: CSV per site, and a printable PDF (reportlab)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path

from resolver.collector.dashboard import by_area, month_tables, not_covered, share
from resolver.collector.status import SiteStatus
from resolver.errors import LachanError

# DejaVu has every Vietnamese glyph; reportlab's built-in fonts do not (Debian fonts-dejavu-core).
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
CSV_FIELDS = ("site", "name", "kind", "district", "commune", "covered", "chain", "reason",
              "last_seq", "last_period_end")  # fmt: skip


def coverage_csv(statuses: Iterable[SiteStatus], tz: tzinfo) -> str:
    """One row per site; a UTF-8 BOM so spreadsheets show the diacritics."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for status in statuses:
        row = status.as_json(tz)
        row["covered"] = "1" if status.covered else "0"
        writer.writerow(row)
    return out.getvalue()


def _when(ts: int | None, tz: tzinfo) -> str:
    """As the dashboard writes it: day/month/year and hour, in the province's zone."""
    return datetime.fromtimestamp(ts, tz).strftime("%d/%m/%Y %H:%M") if ts else "—"


def _fonts() -> tuple[str, str]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").exists():
            pdfmetrics.registerFont(TTFont("DejaVu", str(folder / "DejaVuSans.ttf")))
            pdfmetrics.registerFont(TTFont("DejaVu-Bold", str(folder / "DejaVuSans-Bold.ttf")))
            return "DejaVu", "DejaVu-Bold"
    raise LachanError("PDF export: DejaVuSans.ttf not found (install fonts-dejavu-core)")


def _table(rows: Sequence[Sequence[object]], font: str, bold: str) -> object:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    table = Table([[c if hasattr(c, "drawOn") else str(c) for c in row] for row in rows],
                  repeatRows=1)  # fmt: skip
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font, 8), ("FONT", (0, 0), (-1, 0), bold, 8),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
    ]))  # fmt: skip
    return table


BAR = 120  # points: the length of a full bar on paper (100% coverage, or the busiest month)


def bar(length: float, outline: bool) -> object:
    """A black bar ``length`` points long, in a box of BAR when ``outline`` (the 100% target):
    black on white, so it survives a monochrome printer and a photocopy."""
    from reportlab.graphics.shapes import Drawing, Rect
    from reportlab.lib import colors

    drawing = Drawing(BAR + 2, 10)
    if outline:
        drawing.add(Rect(1, 1, BAR, 8, fillColor=colors.white, strokeColor=colors.black,
                         strokeWidth=0.5))  # fmt: skip
    drawing.add(Rect(1, 1, max(0.0, min(length, BAR)), 8, fillColor=colors.black,
                     strokeColor=None))  # fmt: skip
    return drawing


def coverage_pdf(statuses: Sequence[SiteStatus], months: Iterable[tuple[str, str, int]],
                 province: str, tz: tzinfo, now: int, t: dict[str, str],
                 period: str | None = None) -> bytes:  # fmt: skip
    """An A4 report: the title block, coverage against 100%, areas, gaps, blocks per month
    (those of ``period``, printed under the title, when the report covers one)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    font, bold = _fonts()
    head = ParagraphStyle("h", fontName=bold, fontSize=11, leading=14, alignment=1)
    text = ParagraphStyle("p", fontName=font, fontSize=9, leading=12)
    h2 = ParagraphStyle("h2", fontName=bold, fontSize=10, leading=14, spaceBefore=8)
    made = datetime.fromtimestamp(now, tz).strftime("%d/%m/%Y %H:%M")
    story: list[object] = [
        _table([[province, t["nation"]], ["", t["motto"]]], bold, bold),
        Spacer(1, 12), Paragraph(t["report_title"], head),
        *([Paragraph(f"{t['report_period']}: {period}", text)] if period else []),
        Paragraph(f"{t['made_at']}: {made} ({tz})", text), Paragraph(t["coverage"], h2),
        _table([["", t["covered"], t["total"], "%", t["target"]]] + [
            [label, s.covered, s.total, f"{s.percent}%", bar(BAR * s.percent / 100, True)]
            for label, s in ((t["schools"], share(statuses, "school")),
                             (t["isps"], share(statuses, "isp")))], font, bold),
        Paragraph(t["by_area"], h2),
        _table([[t["district"], t["commune"], t["kind"], t["covered"], t["total"]]] + [
            [a.district, a.commune, t[a.kind], a.share.covered, a.share.total]
            for a in by_area(statuses)], font, bold),
        Paragraph(t["not_covered"], h2),
        _table([[t["site"], t["district"], t["commune"], t["reason"], t["last_report"]]] + [
            [s.site.name, s.site.district, s.site.commune, t["reason_" + s.reason],
             _when(s.last_period_end, tz)]
            for s in not_covered(statuses)], font, bold),
    ]  # fmt: skip
    story += _month_flowables(months, t, font, bold, h2)
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=t["report_title"]).build(story)
    return out.getvalue()


def _month_flowables(months: Iterable[tuple[str, str, int]], t: dict[str, str], font: str,
                     bold: str, h2: object) -> list[object]:  # fmt: skip
    from reportlab.platypus import Paragraph

    content, bypass = month_tables(months)
    out: list[object] = []
    for title, table, with_queries in ((t["blocks"], content, True), (t["bypass"], bypass, False)):
        head = [t["month"]] + ([t["queries"]] if with_queries else []) + list(table.categories)
        head += [t["all_blocks"], ""]
        rows = [[m] + ([table.queries.get(m, 0)] if with_queries else [])
                + [table.cells.get((m, c), 0) for c in table.categories]
                + [table.month_total(m), bar(table.bar(m, BAR), False)] for m in table.months]  # fmt: skip
        out += [Paragraph(title, h2), _table([head, *rows], font, bold)]
    return out
