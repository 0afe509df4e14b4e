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
                      " state, last_active FROM chains ORDER BY site, instance")  # fmt: skip
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


def monthly(db: Database, site: str | None = None) -> list[tuple[str, str, int]]:
    """``(month, category, n)`` summed over every site, or one site; category "*" = queries."""
    where, params = (" WHERE site = ?", (site,)) if site else ("", ())
    with db.tx() as tx:
        rows = tx.run("SELECT month, category, SUM(n) FROM monthly" + where +
                      " GROUP BY month, category", params)  # fmt: skip
    return [(str(m), str(c), int(n)) for m, c, n in rows]


def history(db: Database, site: str, limit: int = 48) -> list[tuple[str, int, int, int]]:
    """The site's latest records: ``(instance, seq, period_start, period_end)``, newest first."""
    with db.tx() as tx:
        rows = tx.run("SELECT instance, seq, period_start, period_end FROM records"
                      " WHERE site = ? ORDER BY period_end DESC, instance LIMIT ?",
                      (site, limit))  # fmt: skip
    return [(str(i), int(s), int(a), int(b)) for i, s, a, b in rows]


def incidents(db: Database, site: str, limit: int = 100) -> list[tuple[int, str, int, str, str]]:
    """The site's refused pushes: ``(at, instance, seq, kind, detail)``, newest first."""
    with db.tx() as tx:
        rows = tx.run("SELECT at, instance, seq, kind, detail FROM incidents WHERE site = ?"
                      " ORDER BY at DESC LIMIT ?", (site, limit))  # fmt: skip
    return [(int(a), str(i), int(s), str(k), str(d)) for a, i, s, k, d in rows]
