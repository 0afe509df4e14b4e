"""The shrink guard: compare a download with the largest copy confirmed good over a window.

Comparing with the previous copy only lets a feed shrink by half eleven times in a row,
1,000 entries down to 1, each step accepted. The baseline is instead the largest of: the
copies accepted in the last ``window`` seconds (at most ``KEEP`` of them), the copy in force,
and the bundled copy, so no run of small steps can take a list below ``1 - max_shrink`` of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KEEP = 32  # accepted copies remembered per source (a refresh every hour: over a day)


def history(meta: dict[str, Any]) -> list[tuple[float, int]]:
    """The (time, entries) of accepted copies recorded in a source's metadata."""
    raw = meta.get("good", [])
    out = []
    for row in raw if isinstance(raw, list) else []:
        try:
            out.append((float(row[0]), int(row[1])))
        except (TypeError, ValueError, IndexError):
            continue  # a hand-edited or older metadata file: ignore the odd row
    return out


def baseline(
    good: Sequence[tuple[float, int]], current: int, bundled: int, now: float, window: float
) -> int:
    """Entries a new download is measured against."""
    recent = [entries for when, entries in good if now - when <= window]
    return max([current, bundled, *recent])


def too_small(entries: int, base: int, max_shrink: float) -> bool:
    """True when ``entries`` lost more than ``max_shrink`` of ``base``."""
    return base > 0 and entries < base * (1 - max_shrink)


def remember(
    good: Sequence[tuple[float, int]], now: float, entries: int, window: float
) -> list[list[float | int]]:
    """The history to store after accepting a copy of ``entries`` at ``now``."""
    kept = [(when, n) for when, n in good if now - when <= window]
    kept.append((now, entries))
    return [[when, n] for when, n in kept[-KEEP:]]
