"""A self-contained HTML page shell and table helper shared by the audit and coverage reports."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;font-size:13px}
.headline{display:flex;gap:16px;margin:16px 0}
.kpi{border:1px solid #ccc;border-radius:6px;padding:10px 16px;min-width:140px}
.kpi b{display:block;font-size:26px}
table{border-collapse:collapse;font-size:13px;margin-top:6px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;white-space:nowrap}
td:last-child{white-space:normal}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#0a7d32;font-weight:bold} .bad{color:#b00020;font-weight:bold}
.warn{color:#8a5a00;font-weight:bold}
"""


def page(title: str, meta: str, body: str, lang: str = "en") -> str:
    """A complete page: inline CSS only, no scripts, no external resources."""
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f'<h1>{escape(title)}</h1><p class="meta">{escape(meta)}</p>\n{body}\n</body></html>\n'
    )


def kpis(items: Sequence[tuple[str, str]]) -> str:
    """Big headline numbers in boxes."""
    boxes = "".join(f'<div class="kpi"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in items)
    return f'<div class="headline">{boxes}</div>'


def cell(value: object, css: str = "") -> str:
    """One table cell; integers are right-aligned with thousands separators."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="n {css}">{value:,}</td>'
    return f'<td class="{css}">{escape(str(value))}</td>'


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table from a header and rows of already-rendered ``<td>`` cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "\n".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
