"""ISP subscriber mode in a running process: follow the store, serve RADIUS, export metrics.

``start_subscribers`` is the one call ``app`` and the supervisor make when the config has a
``subscribers:`` section. Workers follow the store and drop the state of changed clients;
the process that serves /metrics (the single process or the supervisor) also runs the RADIUS
listener and exports the subscriber metrics, which count, and never name, subscribers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..state import load_policies
from .follow import Follower, invalidator
from .radius import RESULTS, read_secret
from .radius_listen import RadiusListener, open_radius
from .replica import Replica
from .store import open_store
from .view import process_replica

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)
METRIC_NAMES = (
    "lachan_subscriber_store_up",
    "lachan_subscribers",
    "lachan_subscriber_bindings",
    "lachan_radius_requests_total",
)


@dataclass
class SubscriberService:
    """What ``start_subscribers`` started, for metrics and for stopping."""

    follower: Follower
    radius: RadiusListener | None = None
    transport: asyncio.DatagramTransport | None = None

    def close(self) -> None:
        self.follower.close()
        if self.transport is not None:
            self.transport.close()


async def start_subscribers(
    config: Config, resolver: Any, metrics: Any, radius: bool
) -> SubscriberService:
    """Follow the store (dropping ``resolver``'s changed clients); RADIUS and metrics too
    when ``radius`` is set and the config has a ``radius:`` section."""
    settings = config.subscribers
    assert settings is not None
    loop = asyncio.get_running_loop()
    replica = process_replica(settings)
    forget = resolver.forget_clients if resolver is not None else (lambda *a: None)
    follower = Follower(open_store(settings.store), replica, loop, invalidator(replica, forget))
    follower.start()
    service = SubscriberService(follower)
    if radius and settings.radius is not None:
        await _start_radius(config, service, replica)
    if metrics is not None:
        site = (config.site.id, config.site.kind)
        known = frozenset(load_policies(config, connect=False)[0])
        metrics.registry.register(SubscriberCollector(service, replica, site, known))
    return service


async def _start_radius(config: Config, service: SubscriberService, replica: Replica) -> None:
    settings = config.subscribers.radius  # type: ignore[union-attr]
    assert settings is not None
    try:
        secret = read_secret(settings.secret_file)
        listener = RadiusListener(settings, secret, open_store(config.subscribers.store), replica)  # type: ignore[union-attr]
        service.transport = await open_radius(settings, listener)
    except (OSError, ValueError) as exc:
        log.error("RADIUS accounting not started: subscribers.radius: %s", exc)
        return
    service.radius = listener
    log.info("RADIUS accounting on %s port %d", settings.host, settings.port)


class SubscriberCollector(Collector):
    """The subscriber metrics, read at scrape time: counts per profile, never per subscriber."""

    def __init__(
        self,
        service: SubscriberService,
        replica: Replica,
        site: tuple[str, str],
        profiles: frozenset[str],
    ) -> None:
        self.service, self.replica, self.site = service, replica, list(site)
        self.profiles = profiles  # the label's bounded values; anything else counts as other

    def collect(self) -> Iterator[Metric]:
        site, labels = self.site, ["site", "site_kind"]  # as every lachan metric carries
        up = GaugeMetricFamily(
            "lachan_subscriber_store_up", "1 while the subscriber store is reachable.",
            labels=labels,
        )  # fmt: skip
        up.add_metric(site, 1.0 if self.service.follower.up else 0.0)
        yield up
        per_profile = GaugeMetricFamily(
            "lachan_subscribers", "Subscribers with a profile set, by profile.",
            labels=["profile", *labels],
        )  # fmt: skip
        counts: dict[str, int] = {}
        for name, count in self.replica.profile_counts().items():
            label = name if name in self.profiles else "other"
            counts[label] = counts.get(label, 0) + count
        for name, count in sorted(counts.items()):
            per_profile.add_metric([name, *site], count)
        yield per_profile
        bindings = GaugeMetricFamily(
            "lachan_subscriber_bindings", "Addresses and prefixes bound to a subscriber.",
            labels=labels,
        )  # fmt: skip
        bindings.add_metric(site, self.replica.bindings_count())
        yield bindings
        if self.service.radius is not None:
            requests = CounterMetricFamily(
                "lachan_radius_requests", "RADIUS accounting requests received, by result.",
                labels=["result", *labels],
            )  # fmt: skip
            for result in RESULTS:
                requests.add_metric([result, *site], self.service.radius.results[result])
            yield requests
