"""Opt-in per-query log: JSON lines, rotated, kept N days, client addresses masked.

lachan keeps NO per-query record unless an operator enables this log; metrics and the audit
ledger hold aggregates only. When enabled, every line links a (masked) device to a queried name
at a time: that is PERSONAL DATA under Vietnamese law (Decree 13/2023/ND-CP on personal data
protection, and the Personal Data Protection Law 2025), and about children it is sensitive.
The operator is the data controller: they need a lawful purpose and basis, must tell the people
concerned (parents, pupils, subscribers), restrict access, and keep it no longer than needed.
lachan helps by default: the file is created mode 0600, client addresses are truncated (/24 IPv4,
/48 IPv6) or replaced by a keyed hash whose key is random per day and forgotten the day after
(an IPv4 address space is small enough to brute-force a hash whose key is known), and rotated
files older than ``retention_days`` are deleted.

The hot path only appends a tuple to a bounded deque; ``flush()`` formats and writes a batch and
can run in an executor thread, so disk I/O never stalls the event loop.
"""

from __future__ import annotations

import collections
import hashlib
import ipaddress
import json
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from pathlib import Path

import dnslib

from resolver.errors import ConfigError
from resolver.settings_limits import QueryLogConfig

_STAMP = "%Y%m%dT%H%M%SZ"
_ROTATED = re.compile(r"\.(\d{8}T\d{6}Z)(?:-\d+)?$")
RETENTION_CHECK_EVERY = 3600.0  # seconds between sweeps when no rotation happens
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, not one per line


def truncate_address(address: str, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> str:
    """``192.0.2.77`` -> ``192.0.2.0/24``; ``2001:db8:1:2::5`` -> ``2001:db8:1::/48``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def hash_address(address: str, key: bytes) -> str:
    """A keyed BLAKE2b digest of the address: linkable within one key's day, not reversible."""
    packed = ipaddress.ip_address(address.split("%", 1)[0]).packed
    return "h:" + hashlib.blake2b(packed, key=key, digest_size=8).hexdigest()


# Clients repeat heavily, and ipaddress parsing costs microseconds: cache the masked forms.
_truncate_cached = lru_cache(maxsize=4096)(truncate_address)
_hash_cached = lru_cache(maxsize=4096)(hash_address)


class DailyKeys:
    """One random hashing key per day; a key is forgotten once its day is two days old."""

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random_bytes
        self._keys: dict[date, bytes] = {}

    def key_for(self, day: date) -> bytes:
        """The key of ``day``, created on first use."""
        key = self._keys.get(day)
        if key is None:
            key = self._keys[day] = self._random(32)
            # Yesterday's key stays for records buffered across midnight, then is gone.
            for old in [d for d in self._keys if (day - d).days > 1]:
                del self._keys[old]
        return key

    def days(self) -> list[date]:
        """Days whose key is still held (tests check that old keys are forgotten)."""
        return sorted(self._keys)


Record = tuple[float, str, str, int, str, str, str, int]


class QueryLog:
    """The writer: ``log()`` on the hot path, ``flush()`` off it, ``close()`` at shutdown."""

    def __init__(
        self,
        config: QueryLogConfig,
        clock: Callable[[], float] = time.time,
        keys: DailyKeys | None = None,
    ) -> None:
        if not config.path.parent.is_dir():
            raise ConfigError(f"querylog.path: directory {config.path.parent} does not exist")
        self.config = config
        self._clock = clock
        self._keys = keys or DailyKeys()
        self._pending: collections.deque[Record] = collections.deque()
        self._lock = threading.Lock()  # one flush at a time; log() never takes it
        self._fd = -1
        self._size = 0
        self._day: date | None = None
        self._last_sweep = float("-inf")
        self._span = (0.0, 0.0, date.min)  # [start, end) of the last day computed, and the day
        self.dropped = 0

    def log(
        self, client: str, qname: str, qtype: int, action: str, category: str, profile: str,
        rcode: int,
    ) -> None:  # fmt: skip
        """Queue one query for the log; drops (and counts) when the buffer is full."""
        if len(self._pending) >= self.config.max_buffer:
            self.dropped += 1
            return
        self._pending.append(
            (self._clock(), client, qname, qtype, action, category, profile, rcode)
        )

    def take(self) -> list[Record]:
        """Remove and return every queued record (a worker ships them to the one writer)."""
        taken: list[Record] = []
        pending = self._pending
        while pending:
            taken.append(pending.popleft())
        return taken

    def extend(self, records: list[Record]) -> None:
        """Queue records logged by another process; the buffer bound applies to them too."""
        room = max(0, self.config.max_buffer - len(self._pending))
        self._pending.extend(records[:room])
        self.dropped += len(records) - min(room, len(records))

    def flush(self) -> int:
        """Write every queued record, rotating and sweeping old files as due; returns lines."""
        with self._lock:
            written = 0
            while self._pending:
                batch = self._take_day_batch()
                self._write_batch(batch)
                written += len(batch)
            if self._clock() - self._last_sweep >= RETENTION_CHECK_EVERY:
                self._sweep()
            return written

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # -- internals -------------------------------------------------------------------------

    def _day_of(self, ts: float) -> date:
        start, end, day = self._span
        if start <= ts < end:  # the common case: no datetime arithmetic per record
            return day
        day = datetime.fromtimestamp(ts, self.config.tz).date()
        midnight = datetime.combine(day, dtime(), self.config.tz)
        self._span = (midnight.timestamp(), (midnight + timedelta(days=1)).timestamp(), day)
        return day

    def _take_day_batch(self) -> list[Record]:
        """Queued records up to the first one of another day (daily files hold one day)."""
        first_day = self._day_of(self._pending[0][0])
        batch: list[Record] = []
        while self._pending and self._day_of(self._pending[0][0]) == first_day:
            batch.append(self._pending.popleft())
        return batch

    def _write_batch(self, batch: list[Record]) -> None:
        data = b"".join(self._format(r) for r in batch)
        day = self._day_of(batch[0][0])
        self._ensure_open()
        cfg = self.config
        new_day = cfg.rotate == "daily" and self._day not in (None, day)
        too_big = cfg.rotate == "size" and self._size and self._size + len(data) > cfg.max_bytes
        if new_day or too_big:
            self._rotate()
        if self._day is None or self._size == 0:
            self._day = day
        os.write(self._fd, data)
        self._size += len(data)

    def _format(self, r: Record) -> bytes:
        ts, client, qname, qtype, action, category, profile, rcode = r
        when = datetime.fromtimestamp(ts, self.config.tz)
        line = {
            "ts": when.isoformat(timespec="milliseconds"),
            "client": self._mask(client, self._day_of(ts)),
            "qname": qname,
            "qtype": str(dnslib.QTYPE.get(qtype, qtype)),
            "action": action,
            "category": category,
            "profile": profile,
            "rcode": rcode,
        }
        return _JSON.encode(line).encode() + b"\n"

    def _mask(self, client: str, day: date) -> str:
        try:
            if self.config.client == "hash":
                return _hash_cached(client, self._keys.key_for(day))
            return _truncate_cached(client, self.config.ipv4_prefix, self.config.ipv6_prefix)
        except ValueError:
            return "invalid"  # never write an unparsed client string verbatim

    def _ensure_open(self) -> None:
        if self._fd >= 0:
            return
        path = self.config.path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._day = self._existing_day(path) if self._size else None

    def _existing_day(self, path: Path) -> date | None:
        """The day of a log left by a previous run, read from its first line."""
        try:
            with path.open("rb") as f:
                first = json.loads(f.readline())
            return datetime.fromisoformat(first["ts"]).astimezone(self.config.tz).date()
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: keep appending; the next day rotates it away

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1
        path = self.config.path
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime(_STAMP)
        target = path.with_name(f"{path.name}.{stamp}")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.{stamp}-{n}")
            n += 1
        os.rename(path, target)
        self._sweep()
        self._ensure_open()

    def _sweep(self) -> None:
        """Delete rotated files whose rotation time is older than the retention period."""
        now = self._clock()
        self._last_sweep = now
        cutoff = now - self.config.retention_days * 86400
        for old in rotated_files(self.config.path):
            rotated_at = datetime.strptime(_ROTATED.search(old.name)[1], _STAMP)  # type: ignore[index]
            if rotated_at.replace(tzinfo=UTC).timestamp() < cutoff:
                old.unlink(missing_ok=True)


def rotated_files(path: Path) -> list[Path]:
    """The rotated siblings of ``path`` (``queries.jsonl.20260301T000000Z``), oldest first."""
    prefix = path.name + "."
    found = [
        p for p in path.parent.iterdir() if p.name.startswith(prefix) and _ROTATED.search(p.name)
    ]
    return sorted(found, key=lambda p: p.name)
