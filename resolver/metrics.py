"""Every lachan Prometheus metric, defined once, collected from a stats snapshot at scrape time.

The hot path never touches prometheus_client (see ``resolver.stats``); this collector converts
the current, already-merged snapshot into metric families when Prometheus scrapes. It lives on
an injected ``CollectorRegistry``: no global registry, no import-time side effects.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from resolver import stats
from resolver.errors import ConfigError

PREFIX = "lachan_"
SITE_KINDS = ("school", "isp", "other")


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One exported metric: the snapshot family it reads, its name, type and help text."""

    family: str
    name: str  # full name; counters end in _total as exposed
    kind: str  # counter | gauge | histogram
    help: str


METRICS: tuple[MetricDef, ...] = (
    MetricDef("queries", "lachan_queries_total", "counter",
              "DNS queries received, by transport and query type class."),
    MetricDef("answers", "lachan_answers_total", "counter",
              "DNS answers sent, by action, blocklist category and policy profile."),
    MetricDef("safesearch_rewrites", "lachan_safesearch_rewrites_total", "counter",
              "Search engine names rewritten to their safe-search endpoint, by engine."),
    MetricDef("bypass_attempts", "lachan_bypass_attempts_total", "counter",
              "Queries matching an anti-bypass rule (canary, DoH, VPN, relay), by kind."),
    MetricDef("request_duration", "lachan_request_duration_seconds", "histogram",
              "Time from receiving a query to sending its answer, by transport."),
    MetricDef("cache_hits", "lachan_cache_hits_total", "counter",
              "Answers served from the cache."),
    MetricDef("cache_misses", "lachan_cache_misses_total", "counter",
              "Cache lookups that had to go upstream."),
    MetricDef("cache_evictions", "lachan_cache_evictions_total", "counter",
              "Cache entries evicted before expiry to stay within the size limit."),
    MetricDef("prefetches", "lachan_prefetch_total", "counter",
              "Cached answers refreshed from upstream in the background after a hit in the "
              "last tenth of their TTL (cache.prefetch)."),
    MetricDef("cache_entries", "lachan_cache_entries", "gauge",
              "Entries currently held in the answer caches of all workers."),
    MetricDef("upstream_queries", "lachan_upstream_queries_total", "counter",
              "Exchanges with each configured upstream resolver."),
    MetricDef("upstream_failures", "lachan_upstream_failures_total", "counter",
              "Failed exchanges with each configured upstream resolver, by reason."),
    MetricDef("upstream_duration", "lachan_upstream_duration_seconds", "histogram",
              "Round-trip time of exchanges with each configured upstream resolver."),
    MetricDef("index_entries", "lachan_index_entries", "gauge",
              "Names in the loaded blocklist index, by category and source."),
    MetricDef("list_last_success", "lachan_list_last_success_timestamp_seconds", "gauge",
              "Unix time of the last successful refresh of each blocklist source."),
    MetricDef("list_refresh_failures", "lachan_list_refresh_failures_total", "counter",
              "Failed refreshes of each blocklist source (the last good copy stays in use)."),
    MetricDef("config_reloads", "lachan_config_reloads_total", "counter",
              "Configuration reload attempts."),
    MetricDef("config_reload_failures", "lachan_config_reload_failures_total", "counter",
              "Configuration reloads rejected (the previous configuration stays in force)."),
    MetricDef("index_built", "lachan_index_built_timestamp_seconds", "gauge",
              "Unix time the blocklist index in force was compiled; 0 when lists are off."),
    MetricDef("config_last_reload_success", "lachan_config_last_reload_success_timestamp_seconds",
              "gauge", "Unix time of the last successful configuration reload."),
    MetricDef("worker_restarts", "lachan_worker_restarts_total", "counter",
              "Worker processes restarted by the supervisor after an unexpected exit."),
    MetricDef("workers", "lachan_workers", "gauge",
              "Worker processes currently serving DNS."),
    MetricDef("tcp_refused", "lachan_tcp_refused_total", "counter",
              "TCP connections closed by a limit: access list, per-client or total "
              "connection caps, or the output-buffer budget, by reason."),
    MetricDef("console_refused", "lachan_console_refused_total", "counter",
              "Connections to the console or block page closed by a limit: per-address or "
              "total connection caps, or a request's headers not done within 10 s, by "
              "listener and reason."),
    MetricDef("upstream_mismatched", "lachan_upstream_mismatched_total", "counter",
              "Upstream replies dropped because their ID, question or letter case did not "
              "match the query (late replies, or spoofing attempts)."),
    MetricDef("cache_bytes", "lachan_cache_bytes", "gauge",
              "Bytes held by cached answers as counted against cache.max_memory, all workers."),
    MetricDef("tls_certificate_expiry", "lachan_tls_certificate_expiry_seconds", "gauge",
              "Unix time the DoT/DoH certificate in use expires; 0 without encrypted listeners."),
)  # fmt: skip
EXTRA_METRICS = ("lachan_build_info", "lachan_start_time_seconds")


@dataclass(frozen=True, slots=True)
class SiteLabels:
    """The constant labels every lachan metric carries: which site, and what kind of site."""

    site: str
    site_kind: str

    def __post_init__(self) -> None:
        if self.site_kind not in SITE_KINDS:
            raise ConfigError(
                f"site_kind: {self.site_kind!r} is not one of {', '.join(SITE_KINDS)}"
            )
        if not self.site:
            raise ConfigError("site: must not be empty")


def exposed_names() -> frozenset[str]:
    """Every sample name lachan can expose (with _bucket/_sum/_count for histograms)."""
    names = set(EXTRA_METRICS)
    for m in METRICS:
        if m.kind == "histogram":
            names.update(m.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(m.name)
    return frozenset(names)


class LachanCollector(Collector):
    """Reads ``source()`` (the current merged snapshot) on each scrape."""

    def __init__(
        self,
        source: Callable[[], stats.Snapshot],
        site: SiteLabels | Callable[[], SiteLabels],
        *,
        version: str,
        started_at: float,
    ) -> None:
        self._source = source
        # A callable is read on each scrape: a reload that changes site.id relabels at once.
        self._site = site if callable(site) else (lambda: site)
        self._version = version
        self._started_at = started_at

    def describe(self) -> list[Metric]:
        """Declare the families without reading the source (registration must not scrape)."""
        return [_family(m, self._labels(m)) for m in METRICS] + list(self._extras(self._const()))

    def collect(self) -> Iterator[Metric]:
        """Build every family from one snapshot, so a scrape is internally consistent."""
        snap = self._source()
        const = self._const()
        for m in METRICS:
            family = _family(m, self._labels(m))
            for labels, value in snap.get(m.family, []):
                _add_sample(family, m.kind, [*labels, *const], value)
            yield family
        yield from self._extras(const)

    def _labels(self, m: MetricDef) -> list[str]:
        return [*stats.FAMILIES[m.family].labels, "site", "site_kind"]

    def _const(self) -> tuple[str, str]:
        site = self._site()
        return site.site, site.site_kind

    def _extras(self, const: tuple[str, str]) -> Iterator[Metric]:
        info = InfoMetricFamily(
            "lachan_build", "Build information; the value is always 1.",
            labels=["version", "python", "site", "site_kind"],
        )  # fmt: skip
        info.add_metric([self._version, platform.python_version(), *const], {})
        yield info
        start = GaugeMetricFamily(
            "lachan_start_time_seconds", "Unix time this lachan instance started.",
            labels=["site", "site_kind"],
        )  # fmt: skip
        start.add_metric(list(const), self._started_at)
        yield start


def _family(m: MetricDef, labels: list[str]) -> Metric:
    if m.kind == "counter":
        return CounterMetricFamily(m.name, m.help, labels=labels)
    if m.kind == "gauge":
        return GaugeMetricFamily(m.name, m.help, labels=labels)
    return HistogramMetricFamily(m.name, m.help, labels=labels)


def _add_sample(family: Metric, kind: str, labels: Sequence[str], value: Any) -> None:
    if kind == "histogram":
        counts, total = value
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric(labels, cumulative_buckets(counts), total)
    else:
        assert isinstance(family, CounterMetricFamily | GaugeMetricFamily)
        family.add_metric(labels, value)


def cumulative_buckets(counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-slot counts (last slot +Inf) to Prometheus' cumulative ``le`` buckets."""
    bounds = [floatToGoString(b) for b in stats.DURATION_BUCKETS] + ["+Inf"]
    out, running = [], 0
    for le, n in zip(bounds, counts, strict=True):
        running += n
        out.append((le, float(running)))
    return out


def register(
    registry: CollectorRegistry,
    source: Callable[[], stats.Snapshot],
    site: SiteLabels | Callable[[], SiteLabels],
    *,
    version: str,
    started_at: float,
) -> LachanCollector:
    """Create lachan's collector and register it on ``registry``; returns the collector."""
    collector = LachanCollector(source, site, version=version, started_at=started_at)
    registry.register(collector)
    return collector
