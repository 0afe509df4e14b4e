"""Audit report data: verified ledgers aggregated per site, period bucket and category; CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resolver.audit.record import AuditRecord, iso
from resolver.audit.verify import VerifyResult, verify_ledger
from resolver.errors import AuditError

BUCKETS = {"hour": 3600, "day": 86400}


def bucket_start(ts: int, size: int, tz: tzinfo = UTC) -> int:
    """Start of the hour or day holding ``ts`` on ``tz``'s clock (auditors count local days)."""
    local = datetime.fromtimestamp(ts, tz)
    if size >= BUCKETS["day"]:
        return int(datetime.combine(local.date(), time(0), tzinfo=tz).timestamp())
    return int(local.replace(minute=0, second=0, microsecond=0).timestamp())


def next_bucket(start: int, size: int, tz: tzinfo = UTC) -> int:
    """The bucket after the one starting at ``start`` (a local day is 23 to 25 hours long)."""
    if size < BUCKETS["day"]:
        return start + size
    day = datetime.fromtimestamp(start, tz).date() + timedelta(days=1)
    return int(datetime.combine(day, time(0), tzinfo=tz).timestamp())


ALL = "(all)"
BYPASS = "bypass"  # the block label of anti-bypass answers (resolver.policy.decision.Reason)


@dataclass(frozen=True, slots=True)
class Cell:
    """One site in one time bucket: its queries and its blocks per category."""

    site: str
    site_kind: str
    start: int
    end: int
    queries: int
    blocks: tuple[tuple[str, int], ...]  # content blocks by category, sorted by category
    bypass: int = 0  # anti-bypass answers (DoH canary, relays, DDR): attempts, not content
    allows: tuple[tuple[str, int], ...] = ()  # temporary allows granted, by category, sorted

    @property
    def blocked(self) -> int:
        """All blocks in the cell."""
        return sum(n for _, n in self.blocks)

    @property
    def allowed(self) -> int:
        """All temporary allows granted in the cell."""
        return sum(n for _, n in self.allows)


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report renders: the range, the cells, and how each ledger verified."""

    start: int
    end: int
    bucket: int
    cells: tuple[Cell, ...]
    ledgers: tuple[VerifyResult, ...]
    tz: tzinfo = UTC  # buckets are hours and days of this zone's clock; times print in it
    copies: dict[str, int] = field(default_factory=dict)  # ledger file -> records already counted

    def categories(self) -> list[str]:
        """Categories ordered by total blocks, largest first."""
        totals = self.category_totals()
        return sorted(totals, key=lambda c: (-totals[c], c))

    def category_totals(self) -> dict[str, int]:
        """Blocks per category over every site and bucket."""
        out: dict[str, int] = defaultdict(int)
        for cell in self.cells:
            for cat, n in cell.blocks:
                out[cat] += n
        return dict(out)

    def bucket_starts(self) -> list[int]:
        """Every bucket of the range, empty ones included, so gaps show as gaps."""
        starts = []
        start = bucket_start(self.start, self.bucket, self.tz)
        while start < self.end:
            starts.append(start)
            start = next_bucket(start, self.bucket, self.tz)
        return starts


def ledger_site(path: Path) -> str | None:
    """The site named by a ledger's first record (None when it cannot be read)."""
    try:
        with path.open("rb") as fh:
            site = json.loads(fh.readline()).get("site")
    except (OSError, ValueError, AttributeError):
        return None
    return site if isinstance(site, str) else None


def load_ledgers(paths: Iterable[Path], keys: Mapping[str, Ed25519PublicKey]) -> list[VerifyResult]:
    """Verify each ledger with the key registered for the site its records name.

    The key is chosen by site, never by the ``key_id`` the ledger carries: records labelled
    ``site-a`` verify only with site-a's key. A site without a key is checked as a chain only
    and reported as unverified."""
    results = []
    for path in paths:
        site = ledger_site(path)
        results.append(verify_ledger(path, keys.get(site) if site is not None else None))
    return results


def build_report(
    ledgers: Sequence[VerifyResult],
    start: int,
    end: int,
    bucket: str | None = None,
    tz: tzinfo = UTC,
) -> Report:
    """Aggregate the verified records whose period starts in ``[start, end)``, in hour or
    day buckets of ``tz``'s clock."""
    if end <= start:
        raise AuditError("--to must be after --from")
    size = BUCKETS[bucket] if bucket else (3600 if end - start <= 3 * 86400 else 86400)
    acc: dict[tuple[str, str, int], _Sums] = {}
    seen: set[tuple[str, str, int]] = set()
    copies: dict[str, int] = {}
    for result in sorted(ledgers, key=lambda r: not r.signed):  # verified copies count first
        for record in result.records:
            # Two copies of one ledger hold the same (site, instance, seq): count it once.
            ident = (record.site, record.instance, record.seq)
            if ident in seen:
                copies[str(result.path)] = copies.get(str(result.path), 0) + 1
                continue
            seen.add(ident)
            if start <= record.period_start < end:
                _add(acc, record, bucket_start(record.period_start, size, tz))
    cells = tuple(_cell(key, value, size, tz) for key, value in sorted(acc.items()))
    return Report(start, end, size, cells, tuple(ledgers), tz, copies)


@dataclass(slots=True)
class _Sums:
    queries: int = 0
    blocks: dict[str, int] = field(default_factory=dict)
    allows: dict[str, int] = field(default_factory=dict)


def _cell(key: tuple[str, str, int], sums: _Sums, size: int, tz: tzinfo) -> Cell:
    site, kind, start = key
    bypass = sums.blocks.pop(BYPASS, 0)
    return Cell(site, kind, start, next_bucket(start, size, tz), sums.queries,
                tuple(sorted(sums.blocks.items())), bypass,
                tuple(sorted(sums.allows.items())))  # fmt: skip


def _add(acc: dict[tuple[str, str, int], _Sums], r: AuditRecord, bucket: int) -> None:
    sums = acc.setdefault((r.site, r.site_kind, bucket), _Sums())
    sums.queries += r.queries
    for cat, n in r.blocks_by_category().items():
        sums.blocks[cat] = sums.blocks.get(cat, 0) + n
    for cat, n in r.temporary_allows.items():
        sums.allows[cat] = sums.allows.get(cat, 0) + n


CSV_HEADER = ("site", "site_kind", "period_start", "period_end", "category", "blocked", "queries",
              "bypass_attempts", "temporary_allows")  # fmt: skip


def render_csv(report: Report) -> str:
    """One ``(all)`` row per site and bucket (content blocks, queries, anti-bypass attempts,
    which are not content blocks, and temporary allows granted), then one row per category
    that was blocked or temporarily opened."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for cell in report.cells:
        span = (cell.site, cell.site_kind, iso(cell.start, report.tz), iso(cell.end, report.tz))
        writer.writerow((*span, ALL, cell.blocked, cell.queries, cell.bypass, cell.allowed))
        blocks, allows = dict(cell.blocks), dict(cell.allows)
        for cat in sorted(blocks.keys() | allows.keys()):
            writer.writerow((*span, cat, blocks.get(cat, 0), "", "", allows.get(cat, 0)))
    return out.getvalue()
