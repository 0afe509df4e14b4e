"""Audit report data: verified ledgers aggregated per site, period bucket and category; CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resolver.audit.keys import key_id
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


@dataclass(frozen=True, slots=True)
class Cell:
    """One site in one time bucket: its queries and its blocks per category."""

    site: str
    site_kind: str
    start: int
    end: int
    queries: int
    blocks: tuple[tuple[str, int], ...]  # sorted by category

    @property
    def blocked(self) -> int:
        """All blocks in the cell."""
        return sum(n for _, n in self.blocks)


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report renders: the range, the cells, and how each ledger verified."""

    start: int
    end: int
    bucket: int
    cells: tuple[Cell, ...]
    ledgers: tuple[VerifyResult, ...]
    tz: tzinfo = UTC  # buckets are hours and days of this zone's clock; times print in it

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


def _key_for(path: Path, keys: Sequence[Ed25519PublicKey]) -> Ed25519PublicKey | None:
    if not keys:
        return None
    try:
        with path.open("rb") as fh:
            wanted = json.loads(fh.readline()).get("key_id")
    except (OSError, ValueError, AttributeError):
        return keys[0]  # verify will report the unreadable first line
    return next((k for k in keys if key_id(k) == wanted), keys[0])


def load_ledgers(paths: Iterable[Path], keys: Sequence[Ed25519PublicKey]) -> list[VerifyResult]:
    """Verify each ledger (with the key whose id its first record names, if any are given)."""
    return [verify_ledger(p, _key_for(p, keys)) for p in paths]


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
    acc: dict[tuple[str, str, int], tuple[int, dict[str, int]]] = {}
    for result in ledgers:
        for record in result.records:
            if start <= record.period_start < end:
                _add(acc, record, bucket_start(record.period_start, size, tz))
    cells = tuple(
        Cell(site, kind, b, next_bucket(b, size, tz), queries, tuple(sorted(blocks.items())))
        for (site, kind, b), (queries, blocks) in sorted(acc.items())
    )
    return Report(start, end, size, cells, tuple(ledgers), tz)


def _add(acc: dict[tuple[str, str, int], tuple[int, dict[str, int]]], r: AuditRecord, bucket: int) -> None:  # fmt: skip
    key = (r.site, r.site_kind, bucket)
    queries, blocks = acc.get(key, (0, {}))
    for cat, n in r.blocks_by_category().items():
        blocks[cat] = blocks.get(cat, 0) + n
    acc[key] = (queries + r.queries, blocks)


CSV_HEADER = ("site", "site_kind", "period_start", "period_end", "category", "blocked", "queries")


def render_csv(report: Report) -> str:
    """One ``(all)`` row per site and bucket (with queries), then one row per blocked category."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for cell in report.cells:
        span = (cell.site, cell.site_kind, iso(cell.start, report.tz), iso(cell.end, report.tz))
        writer.writerow((*span, ALL, cell.blocked, cell.queries))
        for cat, n in cell.blocks:
            writer.writerow((*span, cat, n, ""))
    return out.getvalue()
