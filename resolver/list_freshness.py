"""List freshness for metrics, read from the state folder that every refresh writes.

Lists are refreshed either in process (``lists.refresh_interval``) or by the shipped timer
running ``lachan lists update``; both record each source's last success and consecutive
failures in ``sources/<id>.json``. Reading that record, rather than counting inside the
refresh call, makes ``lachan_list_*`` true whichever of the two does the work.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .stats import Stats


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
        from .lists.fetch import read_meta

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
