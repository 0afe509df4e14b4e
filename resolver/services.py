"""What a serving process runs beside its listeners: the metrics endpoint, the audit
feed, the console, periodic jobs, and memory settling (wired by resolver.compose).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import __version__
from .config import Config
from .errors import LachanError
from .state import ServingState
from .stats import Snapshot

if TYPE_CHECKING:  # loaded only when configured (see the functions that import them)
    from .audit_feed import AuditFeed
    from .console.runner import ConsoleRunner
    from .metrics_http import MetricsServer
    from .querylog import QueryLog

log = logging.getLogger(__name__)
GC_THRESHOLDS = (5_000, 4, 1_000)


def start_metrics(
    config: Config, source: Callable[[], Snapshot], current: Callable[[], Config]
) -> MetricsServer | None:
    """The /metrics endpoint, if configured; a busy port is logged, never fatal for DNS.

    Site labels are read from ``current()`` (the config in force) on each scrape.
    """
    if not config.metrics_listen:
        return None
    from prometheus_client.registry import CollectorRegistry

    from .metrics import SiteLabels, register
    from .metrics_http import MetricsServer, parse_address

    registry = CollectorRegistry(auto_describe=True)
    register(
        registry,
        source,
        lambda: SiteLabels(current().site.id, current().site.kind),
        version=__version__,
        started_at=time.time(),
    )
    server = MetricsServer(registry, parse_address(config.metrics_listen))
    try:
        address = server.start()
    except LachanError as exc:
        log.error("metrics endpoint not started: %s", exc)
        return None
    log.info("metrics on http://%s:%d/metrics", address.host, address.port)
    return server


def open_audit(
    config: Config, source: Callable[[], Snapshot], state: Callable[[], ServingState]
) -> AuditFeed | None:
    """The audit feed when the config asks for a ledger (cryptography is loaded only then)."""
    if config.audit.ledger is None:
        return None
    from .audit_feed import AuditFeed

    return AuditFeed.open(config, source, state)


async def open_console(
    config: Config,
    current: Callable[[], Config],
    state: Callable[[], ServingState],
    snapshot: Callable[[], Snapshot],
    counters: dict[tuple[str, str], int] | None = None,
) -> ConsoleRunner | None:
    """The school console and block page when configured (aiohttp is loaded only then);
    connections its limits close are added to ``counters`` (``Stats.console_refused``)."""
    if config.console is None:
        return None
    from .console.runner import open_console as start
    from .console.status import Sources

    return await start(config, Sources(current, state, snapshot), counters)


def close_quietly(closable: AuditFeed | QueryLog | None, what: str) -> None:
    """Close at shutdown; a full or failed disk is logged, it must not turn a clean stop
    into an error exit (the audit feed records the open period, not lose it, when it can)."""
    if closable is None:
        return
    try:
        closable.close()
    except (OSError, LachanError) as exc:
        log.error("could not write %s at shutdown: %s", what, exc)


def settle_memory() -> None:
    """After startup or a reload: move long-lived objects out of the collector's way.

    Profiles, keyword automata and cached answers live for hours; the cyclic collector would
    otherwise rescan all of them in every full collection, a stall of tens of milliseconds
    in the middle of serving (seen as p99.9 spikes on the miss path). Young collections also
    run far less often: the hot path allocates few objects and creates no cycles.

    While the cache fills every new entry survives, and a middle-generation collection scans
    all that survived since the last one: at (10,000, 20, 100) about 150,000-200,000 objects,
    one stall of 28 ms of CPU (58 ms measured in a serving process on a loaded machine).
    Young collections of 5,000 and a middle one every 4 do the same total work in pieces of
    at most ~20,000 objects (gen 0 under 3 ms, gen 1 under 9 ms: benchmarks/README.md, the
    tail). A full collection still needs the same ~20 million net allocations as before: in
    steady state (each new entry evicting an old one) that is never.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def every(loop: asyncio.AbstractEventLoop, seconds: float, job: Callable[[], object]) -> None:
    """Run ``job`` every ``seconds`` on the loop; a failing job is logged, never fatal."""

    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("periodic job failed")
        loop.call_later(seconds, run)

    loop.call_later(seconds, run)
