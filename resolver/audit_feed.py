"""Feeding the signed audit ledger from the server's counters, off the hot path.

The hot path only bumps ``Stats``; every few seconds this takes the difference since the last
look and adds it to the open period, so the ledger costs queries nothing.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from . import __version__
from .audit.ledger import FilterState
from .audit.trail import AuditTrail
from .config import Config
from .state import ServingState, allows_store
from .stats import Snapshot

log = logging.getLogger(__name__)


def _allows_counter(config: Config) -> Callable[[int, int], dict[str, int]]:
    """Temporary allows granted in a period, per category, from the allows' log; a log that
    cannot be read is logged and counted as none, never a lost record."""
    store = allows_store(config)

    def granted(start: int, end: int) -> dict[str, int]:
        try:
            return store.granted(start, end)
        except OSError as exc:
            log.error("audit: temporary allows not counted: %s: %s", store.log_path, exc)
            return {}

    return granted


class AuditFeed:
    """Moves answer counts from Stats into the AuditTrail and rolls periods."""

    def __init__(self, trail: AuditTrail, source: Callable[[], Snapshot]) -> None:
        self.trail = trail
        self.source = source  # one process's Stats.snapshot, or the supervisor's worker total
        self._seen_answers: dict[tuple[str, str, str], int] = {}
        self._seen_rewrites: dict[str, int] = {}

    @classmethod
    def open(
        cls, config: Config, source: Callable[[], Snapshot], state: Callable[[], ServingState]
    ) -> AuditFeed | None:
        settings = config.audit
        if settings.ledger is None or settings.key is None:
            return None

        def filter_state() -> FilterState:
            current = state()
            return FilterState(
                current.index_digest or "none",
                int(current.index_built_at),
                current.policy_digest,
                __version__,
            )

        # Stable across restarts: a ledger belongs to one instance and must be reopened by it
        # (a pid in the id made every restart refuse its own ledger).
        instance = settings.instance or socket.gethostname()
        trail = AuditTrail.open(
            settings.ledger, settings.key, site=config.site.id, site_kind=config.site.kind,
            instance=instance, state=filter_state, period=settings.period,
            allows=_allows_counter(config),
        )  # fmt: skip
        return cls(trail, source)

    def tick(self) -> None:
        """Add what was answered since the last tick; append a record if a period ended."""
        self._collect()
        record = self.trail.tick()
        if record is not None:
            log.info("audit: appended the record of the period ending %s", record.period_end)

    def close(self) -> None:
        self._collect()
        self.trail.close()

    def _collect(self) -> None:
        snapshot = self.source()
        answers = {tuple(labels): n for labels, n in snapshot.get("answers", [])}
        delta = {k: n - self._seen_answers.get(k, 0) for k, n in answers.items()}
        self.trail.counts.add_many({k: n for k, n in delta.items() if n > 0})
        self._seen_answers = answers
        rewrites = {labels[0]: n for labels, n in snapshot.get("safesearch_rewrites", [])}
        for engine, n in rewrites.items():
            grown = n - self._seen_rewrites.get(engine, 0)
            if grown > 0:
                self.trail.counts.add_safe_search(engine, grown)
        self._seen_rewrites = rewrites
