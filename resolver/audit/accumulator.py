"""Per-period aggregate counts that the server feeds and the ledger turns into records."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from resolver.audit.record import Cube, check_label
from resolver.errors import AuditError

DEFAULT_PERIOD = 3600
Key = tuple[str, str, str]  # (action, category, profile)


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    """What happened in one period ``[start, end)``: answer counts, safe-search rewrites and
    the temporary allows granted, per category (filled in when the period closes)."""

    start: int
    end: int
    answers: Mapping[Key, int]
    safe_search: Mapping[str, int]
    temporary_allows: Mapping[str, int] = field(default_factory=dict)

    @property
    def queries(self) -> int:
        """All answers in the period."""
        return sum(self.answers.values())

    def cube(self) -> Cube:
        """``answers[action][category][profile]``, labels checked (no names, no addresses)."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (action, category, profile), n in sorted(self.answers.items()):
            if n <= 0:
                continue
            check_label(action, "action")
            check_label(category, "category")
            check_label(profile, "profile")
            out.setdefault(action, {}).setdefault(category, {})[profile] = n
        return out

    def merged(self, other: PeriodCounts) -> PeriodCounts:
        """The sum of two workers' counts for the same period."""
        if (self.start, self.end) != (other.start, other.end):
            raise AuditError("cannot merge counts of different periods")
        return PeriodCounts(
            self.start,
            self.end,
            dict(Counter(self.answers) + Counter(other.answers)),
            dict(Counter(self.safe_search) + Counter(other.safe_search)),
            dict(Counter(self.temporary_allows) + Counter(other.temporary_allows)),
        )


def period_bounds(now: float, period: int) -> tuple[int, int]:
    """The aligned period containing ``now``: hourly periods start on the hour (UTC)."""
    start = int(now) // period * period
    return start, start + period


class PeriodAccumulator:
    """Counts for the open period; ``roll()`` closes it once the clock passes its end.

    Pure apart from the injected ``clock``: no I/O, no threads. Counting is a dict increment so
    the server may call ``add`` on its hot path, or sum its own counters and hand them over with
    ``add_many`` once per period.
    """

    def __init__(
        self,
        period: int = DEFAULT_PERIOD,
        *,
        clock: Callable[[], float] = time.time,
        not_before: int | None = None,
    ) -> None:
        if period < 1:  # short periods (down to 1 s) serve tests and demonstrations
            raise AuditError(f"audit period {period}s is shorter than 1 second")
        self._period = period
        self._clock = clock
        now = int(clock())
        # After a restart the first period starts where the ledger's last record ended (or now),
        # so periods of one instance never overlap.
        self._start = max(now, not_before or 0)
        self._end = max(period_bounds(now, period)[1], self._start + 1)
        self._answers: Counter[Key] = Counter()
        self._safe: Counter[str] = Counter()

    @property
    def period_end(self) -> int:
        """When the open period ends (Unix seconds)."""
        return self._end

    def add(self, action: str, category: str, profile: str, n: int = 1) -> None:
        """Count ``n`` answers with this action, category (``none`` if not blocked), profile."""
        self._answers[(action, category, profile)] += n

    def add_many(self, counts: Iterable[tuple[Key, int]] | Mapping[Key, int]) -> None:
        """Add a batch of ``((action, category, profile), n)`` counts."""
        items = counts.items() if isinstance(counts, Mapping) else counts
        for key, n in items:
            self._answers[key] += n

    def add_safe_search(self, engine: str, n: int = 1) -> None:
        """Count ``n`` safe-search rewrites for a search engine (``google``, ``youtube``...)."""
        self._safe[engine] += n

    def due(self) -> bool:
        """True once the open period has ended."""
        return self._clock() >= self._end

    def roll(self) -> PeriodCounts | None:
        """Close the open period if it has ended and start the next one; else None."""
        now = self._clock()
        if now < self._end:
            return None
        return self._close(self._end, period_bounds(now, self._period))

    def close(self) -> PeriodCounts:
        """Close the open period now (graceful shutdown): a short final period.

        It ends on the next whole second, not the last one: what happened in the fraction of
        a second before the stop (a teacher's allow, counted by its time) belongs to it."""
        now = max(math.ceil(self._clock()), self._start + 1)
        return self._close(min(now, self._end), (now, now + self._period))

    def _close(self, end: int, following: tuple[int, int]) -> PeriodCounts:
        counts = PeriodCounts(self._start, end, dict(self._answers), dict(self._safe))
        # Counts that arrive between the boundary and the roll() call land in the closed period;
        # the server calls roll() on a timer at the boundary, so the skew is that timer's delay.
        self._start, self._end = max(following[0], end), following[1]
        self._answers = Counter()
        self._safe = Counter()
        return counts
