"""What the status and activity pages show, gathered from the running server.

No I/O but the canary query and the ledger's tail. Aggregates only: no client address, no
name history.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dnslib import QTYPE, DNSRecord

from ..audit.acks import load_acks
from ..config import Config
from ..coverage.canary import CANARY_NAME
from ..state import ServingState
from ..stats import Snapshot

TAIL_BYTES = 4 << 20  # a week of 5-minute records is about 1 MB


@dataclass(frozen=True)
class Sources:
    """How the console reads the running server: the config, snapshot and counters in force."""

    config: Callable[[], Config]
    state: Callable[[], ServingState]
    snapshot: Callable[[], Snapshot]


def canary(config: Config, timeout: float = 1.0) -> list[str]:
    """The server's own ``status.lachan.arpa`` TXT answer (empty when it does not answer)."""
    if not config.listeners:
        return []
    listener = config.listeners[0]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(listener.host, listener.host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    query = DNSRecord.question(CANARY_NAME, "TXT")
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(query.pack(), (host, listener.port))
            reply = DNSRecord.parse(sock.recv(4096))
        except Exception:  # noqa: BLE001 - socket errors, timeouts and dnslib parse errors alike
            return []
    return [b"".join(r.rdata.data).decode("utf-8", "replace") for r in reply.rr
            if r.rtype == QTYPE.TXT]  # fmt: skip


def total(snapshot: Snapshot, family: str) -> float:
    return sum(row[1] for row in snapshot.get(family, []) if isinstance(row[1], (int, float)))


def list_rows(
    sources: dict[str, dict[str, Any]], snapshot: Snapshot, now: float
) -> list[tuple[str, int, str]]:
    """(source, entries, hours since its last successful download or "-") per list."""
    fetched = {row[0][0]: row[1] for row in snapshot.get("list_last_success", [])}
    return [
        (name, int(meta.get("entries", 0)),
         f"{(now - fetched[name]) / 3600:.0f} h" if fetched.get(name) else "-")
        for name, meta in sorted(sources.items())
    ]  # fmt: skip


def upstream_rows(config: Config, snapshot: Snapshot) -> list[tuple[str, int, int]]:
    """(upstream, queries sent, failures) for each configured upstream."""
    sent = {row[0][0]: row[1] for row in snapshot.get("upstream_queries", [])}
    failed: dict[str, int] = {}
    for (upstream, _reason), n in snapshot.get("upstream_failures", []):
        failed[upstream] = failed.get(upstream, 0) + n
    names = [str(u) for u in config.upstreams]
    return [(u, int(sent.get(u, 0)), int(failed.get(u, 0))) for u in names]


def encrypted_endpoints(config: Config) -> list[str]:
    """The DoT and DoH endpoints served (``DoT 192.168.10.53:853``), none when not set up."""
    enc = config.encrypted
    hosts = [("DoT", h, p) for h, p in enc.listen_tls] + [
        ("DoH", h, p) for h, p in enc.listen_https
    ]
    return [f"{kind} [{h}]:{p}" if ":" in h else f"{kind} {h}:{p}" for kind, h, p in hosts]


def live_activity(snapshot: Snapshot) -> dict[str, Any]:
    """Queries and blocks per category since the server started (the live counters)."""
    blocks: dict[str, int] = {}
    for (action, category, _profile), count in snapshot.get("answers", []):
        if action == "blocked":
            blocks[category] = blocks.get(category, 0) + int(count)
    return {"queries": int(total(snapshot, "queries")), "blocks": dict(sorted(blocks.items()))}


@dataclass
class Activity:
    """Ledger sums for a span: queries, blocks per category, queries and blocks per hour."""

    queries: int = 0
    blocks: dict[str, int] = field(default_factory=dict)
    hours: dict[str, list[int]] = field(default_factory=dict)  # "HH" -> [queries, blocks]

    def add(self, record: dict[str, Any], hour: str) -> None:
        answers = record.get("answers", {})
        queries = sum(n for cats in answers.values() for p in cats.values() for n in p.values())
        blocked = 0
        for category, per in answers.get("blocked", {}).items():
            n = sum(per.values())
            blocked += n
            self.blocks[category] = self.blocks.get(category, 0) + n
        self.queries += queries
        slot = self.hours.setdefault(hour, [0, 0])
        slot[0] += queries
        slot[1] += blocked


def ledger_records(path: Path | None) -> list[dict[str, Any]]:
    """The ledger's records as JSON objects (a torn line is skipped; verifying is audit's job)."""
    if path is None:
        return []
    try:  # only the tail: a year's ledger is megabytes, and a week is all the pages show
        with path.open("rb") as ledger:
            ledger.seek(max(0, ledger.seek(0, os.SEEK_END) - TAIL_BYTES))
            lines = ledger.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines[-24 * 7 * 12 :]:  # a week of 5-minute periods at most
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "period_start" in record:
            out.append(record)
    return out


def province_ack(ledger: Path | None, last: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Whether the province acknowledged the ledger's last record, as a text key and its
    values, from what ``lachan report push`` noted beside the ledger (its acks, and when)."""
    known = load_acks(ledger) if ledger is not None and last is not None else None
    if known is None or last is None:
        return "ack_unknown", {}
    acks, at = known
    seq = acks.get(str(last.get("instance")), -1)
    behind = int(last.get("seq", 0)) - seq
    return ("ack_all" if behind <= 0 else "ack_behind"), {"seq": seq, "at": at, "behind": behind}


def _today(zone: ZoneInfo, now: float) -> datetime:
    return datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)


def week_start(zone: ZoneInfo, now: float) -> float:
    """Monday 00:00 of this week in the site's time zone, as POSIX time."""
    today = _today(zone, now)
    return (today - timedelta(days=today.weekday())).timestamp()


def ledger_activity(
    records: list[dict[str, Any]], zone: ZoneInfo, now: float
) -> dict[str, Activity]:
    """Today's and this week's sums (days and hours in the site's time zone)."""
    today = _today(zone, now)
    week = today - timedelta(days=today.weekday())
    spans = {"today": Activity(), "week": Activity()}
    for record in records:
        try:
            start = datetime.fromisoformat(str(record["period_start"])).astimezone(zone)
        except ValueError:
            continue
        hour = f"{start:%H}"
        if start >= week:
            spans["week"].add(record, hour)
        if start >= today:
            spans["today"].add(record, hour)
    return spans
