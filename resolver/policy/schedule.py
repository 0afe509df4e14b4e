"""Time windows per category: weekday sets and HH:MM ranges in the site's zone, over midnight too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Window:
    """Active on ``days`` (0=Monday) from ``start`` to ``end`` minutes after midnight.

    ``end`` is exclusive (1440 = midnight at the end of the day). When ``end < start`` the window runs over midnight: it starts on a
    listed day and ends on the next day, so ``Sun-Thu 21:30-06:00`` covers Sunday night into
    Monday morning and nothing from Friday night to Sunday 21:30.
    """

    days: frozenset[int]
    start: int
    end: int
    categories: frozenset[str]

    def active(self, weekday: int, minute: int) -> bool:
        """Whether the window covers ``minute`` of ``weekday`` (local time)."""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        if self.start == self.end:
            return False
        if weekday in self.days and minute >= self.start:
            return True
        return (weekday - 1) % 7 in self.days and minute < self.end


def parse_hhmm(text: str) -> int:
    """``"21:30"`` → 1290 minutes; ``"24:00"`` means end of day; ValueError otherwise."""
    match = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected HH:MM, got {text!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24 and minutes:
        raise ValueError(f"expected HH:MM, got {text!r}")
    return hours * 60 + minutes


def parse_weekday(text: str) -> int:
    """``"Mon"``/``"monday"`` → 0 ... ``"Sun"`` → 6; ValueError for anything else."""
    key = text.strip().lower()[:3] if isinstance(text, str) else ""
    if key not in WEEKDAYS or not _is_weekday_name(text.strip().lower()):
        raise ValueError(f"unknown weekday {text!r}")
    return WEEKDAYS.index(key)


def _is_weekday_name(text: str) -> bool:
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return text in WEEKDAYS or text in full


def local_clock(now: float, zone: ZoneInfo) -> tuple[int, int]:
    """(weekday 0=Monday, minute of day) of POSIX time ``now`` in ``zone``."""
    local = datetime.fromtimestamp(now, zone)
    return local.weekday(), local.hour * 60 + local.minute


def category_scheduled(
    windows: tuple[Window, ...], category: str, now: float, zone: ZoneInfo
) -> bool:
    """Whether some window blocks ``category`` at ``now``."""
    weekday, minute = local_clock(now, zone)
    return any(category in w.categories and w.active(weekday, minute) for w in windows)
