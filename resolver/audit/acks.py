"""What the province's collector last acknowledged, noted beside the ledger by each push.

``lachan report push`` learns, per instance, the last sequence number the collector stored;
it keeps that here (``<ledger>.acks.json``) so the school's console can say whether the
province has the ledger's last record, without asking the collector itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ACKS_SUFFIX = ".acks.json"


def acks_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ACKS_SUFFIX)


def save_acks(ledger: Path, acks: dict[str, int], now: float) -> None:
    """Write ``{"acks": {instance: seq}, "at": unix}`` atomically; a folder the pusher may not
    write to loses only this note (the console then says the acknowledgement is not known)."""
    path = acks_path(ledger)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"acks": acks, "at": int(now)}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def load_acks(ledger: Path) -> tuple[dict[str, int], int] | None:
    """What the last push recorded: (acks, when), or None (never pushed, or unreadable)."""
    try:
        data = json.loads(acks_path(ledger).read_text(encoding="utf-8"))
        acks = {str(i): int(n) for i, n in data["acks"].items()}
        return acks, int(data["at"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
