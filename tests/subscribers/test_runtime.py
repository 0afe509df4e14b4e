"""The subscriber metrics: counts with bounded labels, never a subscriber or an address."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from resolver.subscribers.follow import Follower
from resolver.subscribers.replica import Binding, Replica
from resolver.subscribers.runtime import METRIC_NAMES, SubscriberCollector, SubscriberService
from resolver.subscribers.store import FileStore


def test_profiles_outside_the_served_ones_count_as_other(tmp_path: Path) -> None:
    replica = Replica()
    replica.replace(
        {"line-1": "under16", "line-2": "under16", "line-3": "typo-profile"},
        {"192.0.2.7/32": Binding("line-1", 0.0, "10.0.0.1")},
    )
    loop = asyncio.new_event_loop()
    follower = Follower(FileStore(tmp_path / "s.json"), replica, loop, lambda a: None)
    registry = CollectorRegistry()
    collector = SubscriberCollector(
        SubscriberService(follower), replica, ("isp-a", "isp"), frozenset({"under16"})
    )
    registry.register(collector)
    text = generate_latest(registry).decode()
    loop.close()
    assert 'lachan_subscribers{profile="under16",site="isp-a",site_kind="isp"} 2.0' in text
    assert 'lachan_subscribers{profile="other",site="isp-a",site_kind="isp"} 1.0' in text
    assert 'lachan_subscriber_bindings{site="isp-a",site_kind="isp"} 1.0' in text
    assert "typo-profile" not in text and "line-1" not in text and "192.0.2.7" not in text
    # The names the alert rules and dashboard are checked against (tests/test_metrics.py);
    # the RADIUS counter is there only with a RADIUS listener.
    names = {line.split("{")[0] for line in text.splitlines() if not line.startswith("#")}
    assert names == set(METRIC_NAMES) - {"lachan_radius_requests_total"}
