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
