"""``lachan lists coverage``: leave-one-source-out coverage and over-blocking, as one report.

Three figures per run, all with fixed seeds so that CI and the README agree:

1. per category a shipped profile blocks or schedules, the leave-one-source-out share
   (coverage.py): how much of a list the filter has not seen it catches, by the category's
   other sources, and by the whole embedded default profile without that source (its other
   categories and its keywords too);
2. per source, the share of the same sample the embedded default profile blocks with the
   whole index (a build check: with the source bundled it should be near 100%);
3. per harmless set and profile, every blocked name with its rule (overblock.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from resolver.lists.catalogue import Catalogue
from resolver.lists.coverage import (
    CategoryCoverage,
    LoadedSource,
    category_coverage,
    load_sources,
    profile_wider,
    sample,
)
from resolver.lists.overblock import A, HarmlessResult, harmless_results
from resolver.policy.decide import Lookup, decide
from resolver.policy.decision import Block
from resolver.policy.profile import Profile

# A Saturday noon: outside every shipped schedule, so scheduled categories do not count as
# over-blocking (they are the operator's time-of-day choice).
DEFAULT_AT = datetime(2026, 12, 5, 12, 0)


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """Everything ``lachan lists coverage`` prints."""

    seed: int
    sample: int
    at: datetime
    profile: str  # the profile the build check uses (the embedded default)
    categories: tuple[CategoryCoverage, ...]
    profile_blocked: dict[str, tuple[int, int]]  # source -> (blocked, sampled)
    harmless: tuple[HarmlessResult, ...]


def measured(profiles: Sequence[Profile]) -> list[str]:
    """Categories any profile blocks or schedules."""
    out: set[str] = set()
    for p in profiles:
        out |= p.block | frozenset().union(*(w.categories for w in p.schedules))
    return sorted(out)


def profile_blocked(
    sources: Sequence[LoadedSource], profile: Profile, lookup: Lookup, size: int, seed: int,
    when: datetime,
) -> dict[str, tuple[int, int]]:  # fmt: skip
    """Per source, how many of its sample ``profile`` blocks with the whole index."""
    now = when.replace(tzinfo=profile.timezone).timestamp()
    out: dict[str, tuple[int, int]] = {}
    for src in sources:
        picked = sample(src.names, size, seed, src.id)
        hits = sum(isinstance(decide(profile, n, A, now, lookup), Block) for n in picked)
        if picked:
            out[src.id] = (hits, len(picked))
    return out


def build_report(
    catalogue: Catalogue, state_dir: Path, profiles: Sequence[Profile], default: Profile,
    lookup: Lookup, *, size: int, seed: int, when: datetime = DEFAULT_AT,
) -> CoverageReport:  # fmt: skip
    """Measure every figure of the report."""
    cats = measured(profiles)
    sources = load_sources(catalogue, state_dir, set(cats) | default.block)
    wider = profile_wider(sources, default.block, default.keywords.match)
    coverage = category_coverage(sources, cats, size, seed, wider)
    measured_sources = [s for s in sources if s.category in cats]
    by_profile = profile_blocked(measured_sources, default, lookup, size, seed, when)
    harmless = harmless_results(catalogue.path.parent, profiles, when, lookup)
    return CoverageReport(
        seed, size, when, default.name, tuple(coverage), by_profile, tuple(harmless)
    )


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def to_json(report: CoverageReport) -> dict[str, Any]:
    """The report as plain data (``--json``)."""
    return {
        "seed": report.seed,
        "sample": report.sample,
        "at": report.at.isoformat(timespec="minutes"),
        "profile": report.profile,
        "categories": [_category_json(c, report) for c in report.categories],
        "harmless": [_harmless_json(h) for h in report.harmless],
    }


def _category_json(cov: CategoryCoverage, report: CoverageReport) -> dict[str, Any]:
    share, wider = cov.share, cov.wider_share
    return {
        "category": cov.category,
        "single_source": cov.single_source,
        "leave_one_out_percent": None if share is None else round(100 * share, 2),
        "profile_leave_one_out_percent": None if wider is None else round(100 * wider, 2),
        "sources": [
            {
                "source": s.source,
                "names": s.names,
                "sampled": s.sampled,
                "leave_one_out_blocked": s.blocked,
                "profile_leave_one_out_blocked": s.wider,
                "profile_blocked": report.profile_blocked.get(s.source, (0, 0))[0],
            }
            for s in cov.sources
        ],
    }


def _harmless_json(h: HarmlessResult) -> dict[str, Any]:
    return {
        "set": h.set,
        "profile": h.profile,
        "names": h.size,
        "blocked": len(h.blocked),
        "blocked_percent": _pct(len(h.blocked), h.size),
        "unexpected": len(h.unexpected),
        "unexpected_percent": _pct(len(h.unexpected), h.size),
        "keyword_hits": [{"name": n, "keyword": k} for n, k in h.keyword_hits],
        "blocks": [
            {
                "name": b.name,
                "category": b.category,
                "reason": b.reason,
                "rule": b.rule,
                "source": b.source,
                "expected": b.expected,
            }
            for b in h.blocked
        ],
    }


def measure(
    catalogue: Catalogue, state_dir: Path, policies_dir: Path | None, profile: str,
    *, size: int, seed: int,
) -> CoverageReport:  # fmt: skip
    """Load the profiles and the index (compiled on first use), then build the report."""
    from resolver.errors import ConfigError
    from resolver.lists.index import open_index
    from resolver.lists.snapshot import ensure_index
    from resolver.policy.loader import load_profiles
    from resolver.state import BUNDLED_POLICIES

    profiles = load_profiles(policies_dir or BUNDLED_POLICIES)
    if profile not in profiles:
        known = ", ".join(sorted(profiles))
        raise ConfigError(f"--profile: unknown profile {profile!r} (known: {known})")
    if size < 1:
        raise ConfigError(f"--sample: {size} is not a positive number of names")
    index = open_index(ensure_index(catalogue, state_dir), memo_size=0)
    return build_report(
        catalogue, state_dir, list(profiles.values()), profiles[profile], index,
        size=size, seed=seed,
    )  # fmt: skip
