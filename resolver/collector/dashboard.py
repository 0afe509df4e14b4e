"""Pure view models for the dashboard and the exports, from site statuses and monthly sums."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from resolver.collector.status import SiteStatus

# Anti-bypass blocks (DoH canary, encrypted-resolver discovery, VPN/proxy lists) are shown
# apart: they are attempts to get around the filter, not harmful content that was blocked.
BYPASS_CATEGORIES = frozenset({"bypass", "vpn-proxy-doh"})
QUERIES = "*"


@dataclass(frozen=True, slots=True)
class Share:
    """covered of total, with the percentage (0 when there is nothing to cover)."""

    covered: int
    total: int

    @property
    def percent(self) -> float:
        return round(100.0 * self.covered / self.total, 1) if self.total else 0.0


@dataclass(frozen=True, slots=True)
class AreaRow:
    """Coverage of one kind of site in one district and commune."""

    district: str
    commune: str
    kind: str
    share: Share


@dataclass(frozen=True, slots=True)
class MonthTable:
    """Rows: months (oldest first); columns: categories; plus queries per month."""

    months: tuple[str, ...]
    categories: tuple[str, ...]
    cells: dict[tuple[str, str], int]
    queries: dict[str, int]

    def total(self, category: str) -> int:
        return sum(n for (_, c), n in self.cells.items() if c == category)

    def month_total(self, month: str) -> int:
        """Every category's count in ``month``."""
        return sum(n for (m, _), n in self.cells.items() if m == month)

    def bar(self, month: str, width: int = 200) -> int:
        """The length of ``month``'s bar, the busiest month being ``width`` long."""
        top = max((self.month_total(m) for m in self.months), default=0)
        return round(width * self.month_total(month) / top) if top else 0


def share(statuses: Iterable[SiteStatus], kind: str) -> Share:
    """Covered/registered for one kind of site."""
    mine = [s for s in statuses if s.site.kind == kind]
    return Share(sum(s.covered for s in mine), len(mine))


def by_area(statuses: Sequence[SiteStatus]) -> list[AreaRow]:
    """One row per (district, commune, kind), sorted by district then commune (one pass)."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    for s in statuses:
        cell = counts.setdefault((s.site.district, s.site.commune, s.site.kind), [0, 0])
        cell[0] += s.covered
        cell[1] += 1
    return [AreaRow(d, c, k, Share(*counts[(d, c, k)])) for d, c, k in sorted(counts)]


def not_covered(statuses: Sequence[SiteStatus]) -> list[SiteStatus]:
    """Sites not covered, by district, commune and id."""
    return sorted((s for s in statuses if not s.covered),
                  key=lambda s: (s.site.district, s.site.commune, s.site.id))  # fmt: skip


def month_tables(rows: Iterable[tuple[str, str, int]]) -> tuple[MonthTable, MonthTable]:
    """(content blocks, bypass attempts) from ``(month, category, n)`` sums."""
    content: dict[tuple[str, str], int] = {}
    bypass: dict[tuple[str, str], int] = {}
    queries: dict[str, int] = {}
    for month, category, n in rows:
        if category == QUERIES:
            queries[month] = queries.get(month, 0) + n
            continue
        target = bypass if category in BYPASS_CATEGORIES else content
        target[(month, category)] = target.get((month, category), 0) + n
    months = tuple(sorted(set(queries) | {m for m, _ in content} | {m for m, _ in bypass}))
    return (
        MonthTable(months, tuple(sorted({c for _, c in content})), content, queries),
        MonthTable(months, tuple(sorted({c for _, c in bypass})), bypass, queries),
    )


def within(rows: Iterable[tuple[str, str, int]], first: str | None,
           last: str | None) -> list[tuple[str, str, int]]:  # fmt: skip
    """The ``(month, category, n)`` sums of months from ``first`` to ``last`` (YYYY-MM, both
    included; None = open): the months of a periodic or annual report."""
    return [r for r in rows if (first is None or r[0] >= first) and (last is None or r[0] <= last)]


def _month(month: str | None) -> str:
    return f"{month[5:]}/{month[:4]}" if month else "…"


def period_label(first: str | None, last: str | None) -> str:
    """``01/2025 – 12/2025``; an open side shows as ``…``."""
    return f"{_month(first)} – {_month(last)}"
