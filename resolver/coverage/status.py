"""Per-site coverage status and the one definition of "covered".

A registered site is **covered** at time ``now`` when all of these hold:

1. evidence: with ``--ledgers``, every ledger file found for the site verifies against the
   registry's public key (signatures and hash chain intact, no torn tail) and there is at least
   one; with ``--prometheus``, Prometheus currently scrapes it (signatures do not apply);
2. live: at least ``instances`` (from the registry) distinct instances reported a period that
   ended within the last ``live_within`` seconds (default 2 h: one missed hourly record);
3. current index: on every live instance the blocklist index in force was built at most
   ``max_index_age`` seconds (default 48 h) before its latest report;
4. in use: the site answered more than zero queries in the last ``window`` seconds (default
   24 h), so a resolver nobody points at does not count;
5. not bypassed: if ``--probe`` ran and the site's resolver answered, the test name was
   blocked (an unreachable resolver does not count against a site: school resolvers are often
   only reachable from inside the school).

Without ``--ledgers``/``--prometheus`` (``--probe`` alone) a site is covered when its resolver
answered, its canary names the site with an index no older than ``max_index_age``, and the
test name was blocked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from resolver.coverage.probe import ProbeResult
from resolver.coverage.registry import Site


@dataclass(frozen=True, slots=True)
class CoveragePolicy:
    """The thresholds of the definition above, and the moment it is judged at."""

    now: int
    live_within: int = 2 * 3600
    max_index_age: int = 48 * 3600
    window: int = 24 * 3600
    # site -> last sequence number known to exist (e.g. from the collector): less is a cut tail
    expect_seq: Mapping[str, int] = field(default_factory=dict)
    tz: tzinfo = UTC  # the province's clock, for every time the outputs print


@dataclass(frozen=True, slots=True)
class Evidence:
    """What reports (ledgers or Prometheus) say about one site."""

    source: str  # "ledgers", "prometheus" or "" when no report source was asked for
    valid: bool  # signatures and chains verify (always True for Prometheus)
    signature: str  # human summary: "valid", "missing", "BROKEN file:line: why", "n/a"
    live_instances: int
    last_report: int | None
    index_age: int | None  # oldest index among live instances, seconds
    queries: int  # in the window
    blocked: int  # in the window
    temporary_allows: int = 0  # granted in the window (ledgers only; Prometheus has no count)


NO_EVIDENCE = Evidence("", False, "n/a", 0, None, None, 0, 0)


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """A registered site, its evidence, its probe, and the verdict with reasons."""

    site: Site
    evidence: Evidence
    probe: ProbeResult | None
    covered: bool
    reasons: tuple[str, ...]  # why it is not covered; empty when covered


def _report_reasons(site: Site, ev: Evidence, policy: CoveragePolicy) -> list[str]:
    reasons = []
    if not ev.valid:
        reasons.append(f"ledger {ev.signature}")
    if ev.live_instances < site.instances:
        reasons.append(f"live instances {ev.live_instances}/{site.instances}")
    if ev.index_age is None or ev.index_age > policy.max_index_age:
        reasons.append("index not current")
    if ev.queries <= 0:
        reasons.append("no queries in window")
    return reasons


def _probe_reasons(site: Site, probe: ProbeResult, policy: CoveragePolicy) -> list[str]:
    reasons = []
    if not probe.reachable:
        return ["resolver unreachable"]
    canary = probe.canary
    if canary is None:
        reasons.append(f"no canary ({probe.canary_error})")
    elif canary.site != site.id:
        reasons.append(f"canary names site {canary.site}")
    elif canary.index in ("", "none"):
        reasons.append("canary: no blocklist index (lists disabled)")
    elif canary.index_age > policy.max_index_age:
        reasons.append("canary index not current")
    if probe.test_blocked is not True:
        reasons.append(f"test name not blocked ({probe.test_answer})")
    return reasons


def judge(
    site: Site, evidence: Evidence, probe: ProbeResult | None, policy: CoveragePolicy
) -> SiteStatus:
    """Apply the definition of covered; keep every reason a site falls short."""
    reasons: list[str] = []
    if evidence.source:
        reasons = _report_reasons(site, evidence, policy)
        if probe is not None and probe.reachable and probe.test_blocked is not True:
            reasons.append(f"probe: test name not blocked ({probe.test_answer})")
    elif probe is not None:
        reasons = _probe_reasons(site, probe, policy)
    else:
        reasons = ["no evidence"]
    return SiteStatus(site, evidence, probe, not reasons, tuple(reasons))


@dataclass(frozen=True, slots=True)
class Headline:
    """Covered / registered, per kind."""

    schools: tuple[int, int]
    isps: tuple[int, int]

    @staticmethod
    def of(statuses: list[SiteStatus]) -> Headline:
        """Count covered sites per kind."""

        def count(kind: str) -> tuple[int, int]:
            mine = [s for s in statuses if s.site.kind == kind]
            return sum(s.covered for s in mine), len(mine)

        return Headline(count("school"), count("isp"))


def share(pair: tuple[int, int]) -> str:
    """``3/4 (75.0%)``, or ``0/0 (-)``."""
    covered, total = pair
    return f"{covered}/{total} ({100 * covered / total:.1f}%)" if total else "0/0 (-)"
