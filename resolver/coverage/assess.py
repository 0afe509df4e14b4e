"""Gather evidence (ledgers, Prometheus, probes) for every registered site and judge each one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from resolver.coverage.canary import CANARY_NAME
from resolver.coverage.ledgers import find_ledgers, ledger_evidence
from resolver.coverage.probe import TEST_NAME, ProbeResult, probe_all
from resolver.coverage.prometheus import prometheus_evidence
from resolver.coverage.registry import Site
from resolver.coverage.status import NO_EVIDENCE, CoveragePolicy, Evidence, SiteStatus, judge


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """How to probe: the two names, the per-query timeout and tries, and parallelism."""

    canary_name: str = CANARY_NAME
    test_name: str = TEST_NAME
    timeout: float = 2.0
    tries: int = 2
    concurrency: int = 256


def probe_sites(sites: Sequence[Site], options: ProbeOptions) -> dict[str, ProbeResult]:
    """Probe every site that has a resolver address; sites without one are left out."""
    targets = [s for s in sites if s.resolver is not None]
    results = asyncio.run(
        probe_all(
            [s.resolver for s in targets if s.resolver], concurrency=options.concurrency,
            canary_name=options.canary_name, test_name=options.test_name,
            timeout=options.timeout, tries=options.tries,
        )
    )  # fmt: skip
    return {s.id: r for s, r in zip(targets, results, strict=True)}


def assess(
    sites: Sequence[Site], policy: CoveragePolicy, *, ledgers: Path | None = None,
    prometheus: str | None = None, probe: ProbeOptions | None = None,
) -> list[SiteStatus]:  # fmt: skip
    """The status of every registered site, in registry order."""
    evidence: dict[str, Evidence] = {}
    if ledgers is not None:
        found = find_ledgers(ledgers)
        evidence = {s.id: ledger_evidence(s, found.get(s.id, []), policy) for s in sites}
    elif prometheus is not None:
        evidence = prometheus_evidence(prometheus, sites, policy)
    probes = probe_sites(sites, probe) if probe is not None else {}
    return [judge(s, evidence.get(s.id, NO_EVIDENCE), probes.get(s.id), policy) for s in sites]
