"""Helpers for the policy tests: a dict-backed list lookup, ListMatch and clock builders."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from resolver.lists.match import ListAction, ListMatch

POLICIES = Path(__file__).resolve().parents[2] / "policies"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


class DictLookup:
    """The blocklist index's lookup(), over a dict of exact names (parents walked like it)."""

    def __init__(self, entries: dict[str, ListMatch]) -> None:
        self.entries = entries

    def lookup(self, name: str) -> ListMatch | None:
        labels = name.split(".")
        for i in range(len(labels)):
            hit = self.entries.get(".".join(labels[i:]))
            if hit is not None:
                return hit
        return None


def listed(*categories: str, action: ListAction = ListAction.BLOCK, **kw: object) -> ListMatch:
    """A ListMatch from source ``test`` for the given categories."""
    rule = str(kw.pop("rule", "example.test"))
    return ListMatch(action, frozenset(categories), "test", rule, **kw)  # type: ignore[arg-type]


def at(text: str) -> float:
    """POSIX time of a local wall-clock time in Ho Chi Minh City, e.g. ``2026-12-01 22:00``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=HCM).timestamp()
