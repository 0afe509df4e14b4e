"""Coverage evidence from collected ledger files: verify each, then summarise per site."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from resolver.audit.record import AuditRecord
from resolver.audit.report import BYPASS
from resolver.audit.verify import VerifyResult, tail_problem, verify_ledger
from resolver.coverage.registry import Site
from resolver.coverage.status import CoveragePolicy, Evidence


def _site_of(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            site = json.loads(fh.readline()).get("site")
    except (OSError, ValueError, AttributeError):
        return None
    return site if isinstance(site, str) else None


def find_ledgers(directory: Path) -> dict[str, list[Path]]:
    """Every ``*.jsonl`` under ``directory`` (recursively), grouped by the site it names."""
    found: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(directory.rglob("*.jsonl")):
        site = _site_of(path)
        found[site or "?"].append(path)
    return dict(found)


def _latest_per_instance(results: Sequence[VerifyResult]) -> dict[str, AuditRecord]:
    latest: dict[str, AuditRecord] = {}
    for result in results:
        for record in result.records:
            best = latest.get(record.instance)
            if best is None or record.period_end > best.period_end:
                latest[record.instance] = record
    return latest


def _signature(
    site: Site, results: Sequence[VerifyResult], expect_seq: int | None
) -> tuple[bool, str]:
    if site.public_key is None:
        return False, "no public key in registry"
    if not results:
        return False, "missing"
    for r in results:
        if r.problem:
            return False, f"BROKEN {r.path.name}:{r.problem.line}: {r.problem.message}"
    if expect_seq is not None:
        records = [rec for r in results for rec in r.records]
        cut = tail_problem(sorted(records, key=lambda rec: rec.seq), expect_seq, 0)
        if cut is not None:
            return False, f"TRUNCATED: {cut.message}"
    return True, "valid"


def _unique(results: Sequence[VerifyResult]) -> list[AuditRecord]:
    """Every verified record once, however many copies of its ledger were collected."""
    seen: dict[tuple[str, int], AuditRecord] = {}
    for result in results:
        for record in result.records:
            seen.setdefault((record.instance, record.seq), record)
    return list(seen.values())


def _content_blocks(record: AuditRecord) -> int:
    """Blocks of content: anti-bypass answers are attempts, counted apart (audit report)."""
    return sum(n for cat, n in record.blocks_by_category().items() if cat != BYPASS)


def ledger_evidence(site: Site, paths: Sequence[Path], policy: CoveragePolicy) -> Evidence:
    """Verify ``paths`` with the site's key and summarise them as of ``policy.now``."""
    results = [verify_ledger(p, site.public_key) for p in paths] if site.public_key else []
    valid, signature = _signature(site, results, policy.expect_seq.get(site.id))
    latest = _latest_per_instance(results)
    live = [r for r in latest.values() if 0 <= policy.now - r.period_end <= policy.live_within]
    ages = [r.period_end - r.index_time for r in live]
    recent = [
        r for r in _unique(results)
        if r.period_end > policy.now - policy.window and r.period_start < policy.now
    ]  # fmt: skip
    return Evidence(
        source="ledgers",
        valid=valid,
        signature=signature,
        live_instances=len(live),
        last_report=max((r.period_end for r in latest.values()), default=None),
        index_age=max(ages) if ages else None,
        queries=sum(r.queries for r in recent),
        blocked=sum(_content_blocks(r) for r in recent),
        temporary_allows=sum(n for r in recent for n in r.temporary_allows.values()),
    )
