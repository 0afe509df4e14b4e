"""What ``lachan subscribers`` does: check names against the profiles, read CSV, say where."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from datetime import datetime
from zoneinfo import ZoneInfo

from ..errors import LachanError
from ..policy.clients import address_key
from .replica import Binding, Replica, canonical_prefix
from .store import SubscriberStore

MAX_ID = 253  # a RADIUS User-Name holds at most 253 octets


class SubscriberError(LachanError):
    """A subscriber command's input is wrong: one line saying where."""


def check_id(subscriber: str, where: str = "ID") -> str:
    subscriber = subscriber.strip()
    if not subscriber or len(subscriber.encode()) > MAX_ID or "\n" in subscriber:
        raise SubscriberError(f"{where}: a subscriber ID is 1 to {MAX_ID} bytes on one line")
    return subscriber


def check_profile(name: str, profiles: Collection[str], where: str = "PROFILE") -> str:
    if name not in profiles:
        raise SubscriberError(
            f"{where}: unknown profile {name!r} (known: {', '.join(sorted(profiles))})"
        )
    return name


def read_csv(text: str, source: str, profiles: Collection[str]) -> dict[str, str]:
    """``ID,PROFILE`` rows (a first row ``id,profile`` is a header); every error at once."""
    wanted: dict[str, str] = {}
    problems: list[str] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or (number == 1 and [c.strip().lower() for c in row] == ["id", "profile"]):
            continue
        where = f"{source}:{number}"
        try:
            if len(row) != 2:
                hint = " (columns separated by ';'? save the sheet with ',')" if (
                    len(row) == 1 and ";" in row[0]) else ""  # fmt: skip
                raise SubscriberError(f"{where}: expected ID,PROFILE, got {len(row)} fields{hint}")
            subscriber = check_id(row[0], where)
            wanted[subscriber] = check_profile(row[1].strip(), profiles, where)
        except SubscriberError as exc:
            problems.append(str(exc))
    if problems:
        raise SubscriberError("\n".join(problems[:20]))
    return wanted


def bindings_of(store: SubscriberStore, subscriber: str) -> list[tuple[str, Binding]]:
    return sorted((p, b) for p, b in store.load()[1].items() if b.subscriber == subscriber)


def where(store: SubscriberStore, ip: str, default: str, timezone: str) -> str:
    """Which subscriber and profile ``ip`` maps to now, and since when."""
    try:
        bits, value = address_key(ip)
    except OSError:
        raise SubscriberError(f"IP: not an address: {ip!r}") from None
    profiles, bindings = store.load()
    replica = Replica()
    replica.replace(profiles, bindings)
    binding = replica.binding(bits, value)
    if binding is None:
        return f"{ip}: bound to no subscriber; profile {default} (subscribers.default)"
    prefix = next(p for p, b in replica.items() if b is binding)
    since = datetime.fromtimestamp(binding.since, ZoneInfo(timezone))
    chosen = profiles.get(binding.subscriber)
    profile = chosen if chosen else f"{default} (no profile set: subscribers.default)"
    return (
        f"{ip}: subscriber {binding.subscriber} via {canonical_prefix(prefix)} since "
        f"{since:%Y-%m-%d %H:%M:%S %Z} (NAS {binding.nas}); profile {profile}"
    )
