"""Pure judgement of each registered site from its chains: covered or not, chain state, reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from resolver.audit.record import iso
from resolver.collector.chain import BROKEN, REWRITTEN, VALID, Tip
from resolver.coverage.registry import Site

SILENT, NEVER = "silent", "never"
MAX_INDEX_AGE = 48 * 3600  # lists older than this at the last report are stale
IN_USE_WINDOW = 24 * 3600  # a site that answered no query for this long protects nobody


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """What the dashboard and ``collector status`` say about one registered site."""

    site: Site
    chain: str
    covered: bool
    reason: str  # "" if covered; else never, silent, broken, rewritten, instances, stale, unused
    last_seq: int | None
    last_period_end: int | None
    live_instances: int
    incidents: Mapping[str, int] = field(default_factory=dict)

    def as_json(self, tz: tzinfo) -> dict[str, Any]:
        """The ``collector status --json`` entry (times in the province's zone)."""
        end = self.last_period_end
        return {
            "site": self.site.id, "name": self.site.name, "kind": self.site.kind,
            "district": self.site.district, "commune": self.site.commune,
            "covered": self.covered, "chain": self.chain, "reason": self.reason,
            "last_seq": self.last_seq, "last_period_end": iso(end, tz) if end else None,
            "live_instances": self.live_instances, "incidents": dict(self.incidents),
        }  # fmt: skip


def _chain(tips: Sequence[Tip], live: int) -> str:
    states = {t.state for t in tips}
    if not tips:
        return NEVER
    for state in (REWRITTEN, BROKEN):
        if state in states:
            return state
    return VALID if live else SILENT


def judge_site(
    site: Site, tips: Sequence[Tip], incidents: Mapping[str, int], now: int
) -> SiteStatus:
    """Covered = chain valid, enough instances reported within two periods, lists current."""
    live = [t for t in tips if t.last_period_end >= now - 2 * t.period]
    chain = _chain(tips, len(live))
    reason = "" if chain == VALID else chain
    if not reason and len(live) < site.instances:
        reason = "instances"
    if not reason and any(t.last_period_end - t.index_time > MAX_INDEX_AGE for t in live):
        reason = "stale"
    if not reason and all(t.last_active < now - IN_USE_WINDOW for t in live):
        reason = "unused"
    latest = max(tips, key=lambda t: t.last_period_end, default=None)
    return SiteStatus(
        site, chain, not reason, reason,
        latest.last_seq if latest else None, latest.last_period_end if latest else None,
        len(live), incidents,
    )  # fmt: skip


def judge_all(sites: Sequence[Site], tips: Mapping[str, Sequence[Tip]],
              incidents: Mapping[str, Mapping[str, int]], now: int) -> list[SiteStatus]:  # fmt: skip
    """Every registered site, in registry order."""
    return [judge_site(s, tips.get(s.id, ()), incidents.get(s.id, {}), now) for s in sites]
