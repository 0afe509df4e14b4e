"""The console's audit log: one JSON line per change (who, what, when), append-only."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOG_NAME = "console-audit.log"


class AuditLog:
    """Appends a line per change; never rewrites. No client address is ever written."""

    def __init__(self, state_dir: Path, clock: Callable[[], float]) -> None:
        self.path = Path(state_dir) / LOG_NAME
        self._clock = clock

    def write(self, user: str, action: str, **details: Any) -> None:
        line = {"at": round(self._clock(), 3), "user": user, "action": action, **details}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")

    def allows_per_category(self, since: float) -> dict[str, int]:
        """Temporary allows granted since ``since``, per category (an aggregate for reports)."""
        counts: dict[str, int] = {}
        for entry in self._entries():
            if entry.get("action") == "allow" and entry.get("at", 0) >= since:
                category = str(entry.get("category") or "none")
                counts[category] = counts.get(category, 0) + 1
        return counts

    def _entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash: the rest still counts
            if isinstance(entry, dict):
                out.append(entry)
        return out
