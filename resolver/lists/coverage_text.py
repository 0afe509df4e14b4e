"""The coverage report as text tables, for ``lachan lists coverage`` without ``--json``."""

from __future__ import annotations

from resolver.lists.coverage_report import CoverageReport
from resolver.lists.overblock import HarmlessResult


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def category_lines(report: CoverageReport) -> list[str]:
    """Leave-one-source-out per category, each source below it."""
    out = [
        f"Coverage (seed {report.seed}, up to {report.sample} names per source): "
        f"leave-one-source-out, and what {report.profile} blocks with the whole index",
        f"{'category / source':34} {'names':>7} {'sample':>6} {'left out':>13} "
        f"{'profile w/o':>11} {report.profile:>8}",
    ]
    for cov in report.categories:
        share, wider = cov.share, cov.wider_share
        loo = "single source" if share is None else f"{100 * share:5.1f}%"
        wide = "" if wider is None else f"{100 * wider:5.1f}%"
        out.append(f"{cov.category:34} {'':7} {'':6} {loo:>13} {wide:>11}")
        for s in cov.sources:
            hits, sampled = report.profile_blocked.get(s.source, (0, 0))
            out.append(
                f"  {s.source:32} {s.names:7} {s.sampled:6} {_pct(s.blocked, s.sampled):>13} "
                f"{_pct(s.wider, s.sampled):>11} {_pct(hits, sampled):>8}"
            )
    out.append(
        f"left out: by the category's other sources; profile w/o: by {report.profile} without "
        f"the source (its other categories and keywords too); {report.profile}: whole index"
    )
    return out


def harmless_lines(report: CoverageReport) -> list[str]:
    """Blocked share of each harmless set per profile, then each over-blocked name."""
    out = [
        "",
        f"Harmless sets at {report.at:%Y-%m-%d %H:%M} local time (outside every schedule)",
        f"{'set':26} {'profile':12} {'names':>6} {'blocked':>8} {'other':>13} {'keyword':>8}",
    ]
    for h in report.harmless:
        other = f"{len(h.unexpected)} {_pct(len(h.unexpected), h.size)}"
        out.append(
            f"{h.set:26} {h.profile:12} {h.size:6} {len(h.blocked):8} {other:>13} "
            f"{len(h.keyword_hits):8}"
        )
    out.append(
        "other: blocked for anything but adult, gambling, malware, phishing, scam, doh or "
        "anti-bypass; keyword: names the keyword rules match on their own"
    )
    for h in report.harmless:
        out += _named(h)
    return out


def _named(h: HarmlessResult) -> list[str]:
    # In the top sites, adult or DoH blocks are right; elsewhere every block is listed.
    shown = h.unexpected if h.set == "top-10000" else h.blocked
    lines = [
        f"  {h.set} / {h.profile}: {b.name} {b.reason} {b.category} rule {b.rule} source {b.source}"
        for b in shown
    ]
    lines += [f"  {h.set} / {h.profile}: {n} keyword {k} (alone)" for n, k in h.keyword_hits]
    return lines


def render(report: CoverageReport) -> str:
    """The whole report as text."""
    return "\n".join(category_lines(report) + harmless_lines(report))


def markdown(report: CoverageReport) -> str:
    """The short tables the README and blocklists/README.md carry (``--markdown``)."""
    rows = [
        f"| category | sources | left out (seed {report.seed}) | {report.profile} without it "
        f"| {report.profile} blocks |",
        "|---|---:|---:|---:|---:|",
    ]
    for cov in report.categories:
        share, wider = cov.share, cov.wider_share
        loo = "single source" if share is None else f"{100 * share:.1f}%"
        wide = "-" if wider is None else f"{100 * wider:.1f}%"
        hits = sum(report.profile_blocked.get(s.source, (0, 0))[0] for s in cov.sources)
        sampled = sum(report.profile_blocked.get(s.source, (0, 0))[1] for s in cov.sources)
        rows.append(
            f"| {cov.category} | {len(cov.sources)} | {loo} | {wide} | "
            f"{_pct(hits, sampled).strip()} |"
        )
    rows += ["", "| harmless set | profile | names | blocked | other than expected |"]
    rows.append("|---|---|---:|---:|---:|")
    for h in report.harmless:
        other = f"{len(h.unexpected)} ({_pct(len(h.unexpected), h.size).strip()})"
        rows.append(f"| {h.set} | {h.profile} | {h.size} | {len(h.blocked)} | {other} |")
    return "\n".join(rows)
