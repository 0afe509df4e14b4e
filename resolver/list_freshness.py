"""Lists at run time: the in-process refresh, and freshness metrics from the state folder.

Lists are refreshed either in process (``lists.refresh_interval``) or by the shipped timer
running ``lachan lists update``; both record each source's last success and consecutive
failures in ``sources/<id>.json``. Reading that record, rather than counting inside the
refresh call, makes ``lachan_list_*`` true whichever of the two does the work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from .config import Config
from .lists.snapshot import read_meta
from .stats import Stats

log = logging.getLogger(__name__)


class FreshnessReader:
    """Feeds a Stats from the per-source records; remembers what it has counted."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._seen_failures: dict[str, int] = {}

    def sources(self) -> list[str]:
        """Every source a refresh has tried: each has a record, downloaded or not."""
        return sorted(p.stem for p in (self._state_dir / "sources").glob("*.json"))

    def collect(self) -> list[tuple[str, float, int]]:
        """(source, last success, consecutive failures) per record: file I/O only, so it can
        run in an executor thread while the loop keeps serving."""
        rows = []
        for source in self.sources():
            meta = read_meta(self._state_dir, source)
            success = float(meta.get("last_success", 0) or 0)
            rows.append((source, success, int(meta.get("failures", 0) or 0)))
        return rows

    def apply(self, stats: Stats, rows: Iterable[tuple[str, float, int]]) -> None:
        """Move each source's freshness timestamp and add its failures since the last read
        (on the loop's thread: Stats is not shared across threads)."""
        for source, success, failures in rows:
            if success > stats.list_last_success.get(source, 0.0):
                stats.list_last_success[source] = success
            self._count_failures(stats, source, failures)

    def _count_failures(self, stats: Stats, source: str, consecutive: int) -> None:
        # The record holds consecutive failures (reset by a success): a rise is new failures,
        # a drop means a success came between, after which every failure seen is new.
        seen = self._seen_failures.get(source, 0)
        new = consecutive - seen if consecutive >= seen else consecutive
        if new > 0:
            stats.list_refresh_failures[source] = stats.list_refresh_failures.get(source, 0) + new
        self._seen_failures[source] = consecutive


def recorded_sources(config: Config) -> frozenset[str]:
    """Sources a refresh has tried (a failing one may be in no index yet, but its failures
    still need their own label, not ``other``)."""
    if not config.lists.enabled:
        return frozenset()
    from .settings import default_state_dir

    return frozenset(FreshnessReader(Path(config.lists.state_dir or default_state_dir())).sources())


REFRESH_CRASH = "refresh"  # the failure label of a refresh that failed as a whole


async def refresh_lists(
    config: Config, stats: Stats, reload: Callable[[], Awaitable[object]]
) -> None:
    """Download due list sources off the loop; reload only when one of them changed.

    A failed or implausible download keeps that source's last good copy (resolver.lists.fetch),
    so a refresh can only add protection or keep it, never silently drop a source. Whatever
    goes wrong is one log line and one counted failure: the next refresh still runs.
    """
    try:
        await _refresh_lists_once(config, stats, reload)
    except Exception as exc:  # noqa: BLE001 (the periodic task must outlive any one refresh)
        log.error("list refresh failed, last good index kept: %s: %s", type(exc).__name__, exc)
        stats.record_refresh(REFRESH_CRASH, False, time.time())


async def _refresh_lists_once(
    config: Config, stats: Stats, reload: Callable[[], Awaitable[object]]
) -> None:
    from .lists.catalogue import load_for
    from .lists.fetch import refresh
    from .settings import default_state_dir

    loop = asyncio.get_running_loop()
    state_dir = config.lists.state_dir or default_state_dir()
    catalogue = await loop.run_in_executor(None, load_for, config.lists, config.source)
    report = await loop.run_in_executor(None, lambda: refresh(catalogue, state_dir))
    # Freshness metrics come from the state folder (watch_list_freshness), as for the timer.
    if report.changed:
        await reload()


def watch_list_freshness(config: Config, stats: Stats, every_seconds: float = 30.0) -> None:
    """Export each list source's freshness from the state folder, now and every 30 s.

    Reads a few small JSON files, in the loop's executor; the timer's `lachan lists update`
    and the in-process refresh write them alike.
    """
    if not config.lists.enabled:
        return
    from .settings import default_state_dir

    reader = FreshnessReader(Path(config.lists.state_dir or default_state_dir()))
    loop = asyncio.get_running_loop()

    async def update() -> None:
        try:
            reader.apply(stats, await loop.run_in_executor(None, reader.collect))
        except Exception as exc:  # noqa: BLE001 (metrics must never stop the server)
            log.error("reading list freshness failed: %s: %s", type(exc).__name__, exc)
        loop.call_later(every_seconds, lambda: loop.create_task(update()))

    reader.apply(stats, reader.collect())
    loop.call_later(every_seconds, lambda: loop.create_task(update()))
