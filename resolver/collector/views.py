"""Read-side queries for the dashboard and ``collector status``."""

from __future__ import annotations

from collections.abc import Sequence

from resolver.collector.chain import Tip
from resolver.collector.db import Database
from resolver.collector.status import SiteStatus, judge_all
from resolver.coverage.registry import Site


def tips(db: Database) -> dict[str, list[Tip]]:
    """Every chain tip, by site."""
    out: dict[str, list[Tip]] = {}
    with db.tx() as tx:
        rows = tx.run("SELECT site, last_seq, last_digest, last_period_end, period, index_time,"
                      " state FROM chains ORDER BY site, instance")  # fmt: skip
    for site, *rest in rows:
        out.setdefault(site, []).append(Tip(*rest))
    return out


def incident_counts(db: Database) -> dict[str, dict[str, int]]:
    """Refused pushes per site and kind."""
    out: dict[str, dict[str, int]] = {}
    with db.tx() as tx:
        rows = tx.run("SELECT site, kind, COUNT(*) FROM incidents GROUP BY site, kind")
    for site, kind, n in rows:
        out.setdefault(site, {})[kind] = int(n)
    return out


def statuses(db: Database, sites: Sequence[Site], now: int) -> list[SiteStatus]:
    """The status of every registered site at ``now``."""
    return judge_all(sites, tips(db), incident_counts(db), now)
