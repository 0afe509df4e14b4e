"""Review requests filed from the block page: name, category, profile and time, nothing else.

No client address, no device, no child: a request says only that someone on this network
would like a name looked at. The queue is one JSON file in the state folder, bounded.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "console-reviews.json"
MAX_PENDING = 500  # a flood of requests cannot grow the file without bound


@dataclass(frozen=True, slots=True)
class Review:
    id: str
    name: str
    category: str
    profile: str
    at: float


class ReviewQueue:
    def __init__(self, state_dir: Path, clock: Callable[[], float]) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self._clock = clock

    def pending(self) -> list[Review]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError:
            return []  # a damaged queue is emptied by the next write, never a crash
        return [Review(**item) for item in data if isinstance(item, dict)]

    def file(self, name: str, category: str, profile: str) -> bool:
        """Add a request; False when the same one is pending already or the queue is full."""
        queue = self.pending()
        if len(queue) >= MAX_PENDING or any((r.name, r.profile) == (name, profile) for r in queue):
            return False
        review = Review(secrets.token_hex(8), name, category, profile, self._clock())
        self._write([*queue, review])
        return True

    def take(self, review_id: str) -> Review | None:
        """Remove a request from the queue (accepted or dismissed); None if not there."""
        queue = self.pending()
        found = next((r for r in queue if r.id == review_id), None)
        if found is not None:
            self._write([r for r in queue if r is not found])
        return found

    def _write(self, queue: list[Review]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in queue], ensure_ascii=False), "utf-8")
        os.replace(tmp, self.path)
