"""The collector's own metrics: failed pushes by kind and pushes answered 429, per process.

Served at ``/metrics`` to loopback clients only (a Prometheus beside the collector). Counts
carry a bounded kind label and nothing else: no address, no site.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from resolver.collector.limits import PushGuard

FAILURE_KINDS = ("bad-request", "unknown-site", "too-large", "unsigned")
THROTTLED_BY = ("address", "site")


class _GuardCollector(Collector):
    def __init__(self, guard: PushGuard) -> None:
        self.guard = guard

    def collect(self) -> Iterator[Metric]:
        failures = CounterMetricFamily("lachan_collector_push_failures",
                                       "Push API requests that failed, by kind.",
                                       labels=["kind"])  # fmt: skip
        for kind in FAILURE_KINDS:
            failures.add_metric([kind], self.guard.failures[kind])
        yield failures
        throttled = CounterMetricFamily("lachan_collector_push_throttled",
                                        "Push API requests answered 429, by the limit reached.",
                                        labels=["limit"])  # fmt: skip
        for limit in THROTTLED_BY:
            throttled.add_metric([limit], self.guard.throttled[limit])
        yield throttled
        keys = GaugeMetricFamily("lachan_collector_limiter_buckets",
                                 "Failure buckets held by the push limiter, by table.",
                                 labels=["limit"])  # fmt: skip
        keys.add_metric(["address"], len(self.guard.addresses))
        keys.add_metric(["site"], len(self.guard.sites))
        yield keys


def exposition(guard: PushGuard) -> bytes:
    """The Prometheus text for ``guard``'s counts."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GuardCollector(guard))
    return generate_latest(registry)
