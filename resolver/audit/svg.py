"""Inline SVG charts (stacked bars over time, share bars) for offline HTML reports: no scripts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

# Okabe-Ito first (safe for colour-blind readers), then a few distinct extras.
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF",
)  # fmt: skip
OTHER_COLOUR = "#B0B0B0"


def colour_map(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per name; names past the palette share a grey."""
    return {n: PALETTE[i] if i < len(PALETTE) else OTHER_COLOUR for i, n in enumerate(names)}


def nice_max(value: int) -> int:
    """A round axis maximum at or above ``value`` that splits into four whole ticks."""
    if value <= 4:
        return 4
    scale = 1
    while True:
        for m in (10, 12, 16, 20, 24, 30, 40, 50, 60, 80):
            top = m * scale // 10
            if top >= value and top % 4 == 0:
                return top
        scale *= 10


def _axis(x0: int, y0: int, width: int, height: int, top: int) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i // 4
        y = y0 + height - height * i // 4
        parts.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + width}" y2="{y}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" font-size="11">{value:,}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], x0: int, slot: float, y: int) -> list[str]:
    widest = 7 * max((len(label) for label in labels), default=1) + 12  # ~7 px per glyph at 11px
    every = max(1, math.ceil(widest / slot))  # skip labels so that none overlap
    return [
        f'<text x="{x0 + slot * i + slot / 2:.1f}" y="{y}" text-anchor="middle" '
        f'font-size="11">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def stacked_bars(
    labels: Sequence[str], series: Mapping[str, Sequence[int]], title: str, width: int = 900
) -> str:
    """Bars per label, stacked by series (e.g. blocks per category per hour), with a legend."""
    height, x0, y0 = 260, 70, 30
    plot_w = width - x0 - 20
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = nice_max(max(totals, default=0))
    slot = plot_w / max(len(labels), 1)
    colours = colour_map(list(series))
    parts = [f'<text x="{x0}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>']
    parts += _axis(x0, y0, plot_w, height, top)
    for i in range(len(labels)):
        y: float = y0 + height
        for name, values in series.items():
            h = height * values[i] / top
            if h <= 0:
                continue
            y -= h
            parts.append(
                f'<rect class="bar" x="{x0 + slot * i + slot * 0.1:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{colours[name]}">'
                f"<title>{escape(labels[i])} {escape(name)}: {values[i]:,}</title></rect>"
            )
    parts += _x_labels(labels, x0, slot, y0 + height + 16)
    parts += _legend(list(series), colours, x0, y0 + height + 36, plot_w)
    rows = (len(series) + 5) // 6
    total_h = y0 + height + 44 + 18 * rows
    return _svg(width, total_h, parts, title)


def _legend(names: Sequence[str], colours: Mapping[str, str], x0: int, y: int, w: int) -> list[str]:
    parts, col_w = [], w // 6
    for i, name in enumerate(names):
        x, yy = x0 + col_w * (i % 6), y + 18 * (i // 6)
        parts.append(f'<rect x="{x}" y="{yy - 10}" width="12" height="12" fill="{colours[name]}"/>')
        parts.append(f'<text x="{x + 16}" y="{yy}" font-size="12">{escape(name)}</text>')
    return parts


def share_bars(items: Sequence[tuple[str, int]], title: str, width: int = 900) -> str:
    """Horizontal bars of each item's share of the total, largest first, with percentages."""
    ordered = sorted(items, key=lambda kv: (-kv[1], kv[0]))
    total = sum(v for _, v in ordered) or 1
    colours = colour_map([k for k, _ in ordered])
    x0, bar_h, gap, plot_w = 150, 20, 8, width - 150 - 140
    parts = [f'<text x="10" y="18" font-size="14" font-weight="bold">{escape(title)}</text>']
    for i, (name, value) in enumerate(ordered):
        y = 32 + i * (bar_h + gap)
        w = max(plot_w * value / total, 1.0)
        parts.append(
            f'<text x="{x0 - 8}" y="{y + 15}" text-anchor="end" font-size="12">{escape(name)}</text>'
        )
        parts.append(
            f'<rect class="bar" x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{colours[name]}"><title>{escape(name)}: {value:,}</title></rect>'
        )
        parts.append(
            f'<text x="{x0 + w + 6:.1f}" y="{y + 15}" font-size="12">'
            f"{100 * value / total:.1f}% ({value:,})</text>"
        )
    return _svg(width, 40 + len(ordered) * (bar_h + gap), parts, title)


def _svg(width: int, height: int, parts: list[str], title: str) -> str:
    body = "\n".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif">\n{body}\n</svg>'
    )
