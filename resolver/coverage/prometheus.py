"""Coverage evidence from Prometheus: which sites it scrapes now, their index age and counts.

Uses the metric names of resolver/metrics.py: ``lachan_build_info`` (one series per scraped
instance, gone ~5 minutes after the last scrape), ``lachan_list_last_success_timestamp_seconds``,
``lachan_queries_total`` and ``lachan_answers_total{action="blocked"}``, all with a ``site``
label. Prometheus samples are not signed, so the signature column reads ``n/a``.
"""

from __future__ import annotations

from collections.abc import Sequence

import requests

from resolver.coverage.registry import Site
from resolver.coverage.status import CoveragePolicy, Evidence
from resolver.errors import LachanError

QUERIES = {
    "live": "count by (site) (lachan_build_info)",
    "last": "max by (site) (timestamp(lachan_build_info))",
    # The index in force, the same time the ledger and the canary report (a list download
    # alone does not mean the server is filtering with it).
    "refreshed": "max by (site) (lachan_index_built_timestamp_seconds > 0)",
    "queries": "sum by (site) (increase(lachan_queries_total[{window}s]))",
    "blocked": 'sum by (site) (increase(lachan_answers_total{{action="blocked"}}[{window}s]))',
}


def _query(base: str, promql: str, at: int, timeout: float) -> dict[str, float]:
    try:
        resp = requests.get(
            f"{base.rstrip('/')}/api/v1/query", params={"query": promql, "time": str(at)},
            timeout=timeout,
        )  # fmt: skip
        resp.raise_for_status()
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise LachanError(f"prometheus {base}: {exc}") from None
    if body.get("status") != "success":
        raise LachanError(f"prometheus {base}: {body.get('error', 'query failed')}")
    out: dict[str, float] = {}
    for item in body["data"]["result"]:
        site = item.get("metric", {}).get("site")
        if site:
            out[site] = float(item["value"][1])
    return out


def prometheus_evidence(
    base: str, sites: Sequence[Site], policy: CoveragePolicy, timeout: float = 10.0
) -> dict[str, Evidence]:
    """One Evidence per registered site from five instant queries at ``policy.now``."""
    got = {
        name: _query(base, q.format(window=policy.window), policy.now, timeout)
        for name, q in QUERIES.items()
    }
    out = {}
    for site in sites:
        refreshed = got["refreshed"].get(site.id)
        last = got["last"].get(site.id)
        out[site.id] = Evidence(
            source="prometheus",
            valid=True,
            signature="n/a",
            live_instances=int(got["live"].get(site.id, 0)),
            last_report=int(last) if last is not None else None,
            index_age=int(policy.now - refreshed) if refreshed is not None else None,
            queries=round(got["queries"].get(site.id, 0.0)),
            blocked=round(got["blocked"].get(site.id, 0.0)),
        )
    return out
