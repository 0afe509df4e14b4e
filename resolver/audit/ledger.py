"""The append-only ledger file: one signed, hash-chained JSON line per period, fsync'd.

Crash semantics: a record is one ``write`` of one line followed by ``fsync``, so a kill -9 loses
at most the open period. A crash inside that write can leave a torn last line (no newline).
``Ledger.open`` never builds on it silently: it copies the torn bytes to
``<ledger>.torn-<offset>``, truncates the ledger back to the last complete line, and the next
record carries a signed ``recovered`` note (offset, length, SHA-256 of the cut bytes) that
``verify`` reports. ``verify`` on a ledger that still ends torn fails with that line number.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from resolver.audit.accumulator import PeriodCounts
from resolver.audit.canonical import GENESIS, sha256_hex
from resolver.audit.keys import key_id
from resolver.audit.record import (
    SITE_KINDS,
    AuditRecord,
    check_label,
    record_from_json,
    sign,
    signature_ok,
)
from resolver.errors import AuditError


@dataclass(frozen=True, slots=True)
class FilterState:
    """What was in force during a period: index and policy digests, index build time, version."""

    index_digest: str
    index_time: int
    policy_digest: str
    version: str


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _save_torn(path: Path, data: bytes, cut: int) -> dict[str, Any]:
    torn = data[cut:]
    side = path.with_name(f"{path.name}.torn-{cut}")
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, torn)
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"offset": cut, "bytes": len(torn), "sha256": sha256_hex(torn), "saved_as": side.name}


class Ledger:
    """One instance's ledger, opened for appending; use ``Ledger.open`` and ``append``."""

    def __init__(self, path: Path, fd: int, key: Ed25519PrivateKey, identity: tuple[str, str, str],
                 last: AuditRecord | None, recovered: dict[str, Any]) -> None:  # fmt: skip
        self.path = path
        self._fd = fd
        self._key = key
        self._site, self._kind, self._instance = identity
        self._last = last
        self.recovered = recovered  # the torn tail cut at open, or {}: surfaced to the operator

    @classmethod
    def open(
        cls, path: Path, signing_key: Ed25519PrivateKey, *, site: str, site_kind: str,
        instance: str,
    ) -> Ledger:  # fmt: skip
        """Open (or create) ``path`` for appending, locked, with the chain's tail recovered."""
        check_label(site, "site")
        check_label(instance, "instance")
        if site_kind not in SITE_KINDS:
            raise AuditError(f"site_kind {site_kind!r} is not one of {SITE_KINDS}")
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AuditError(f"{path}: ledger is locked by another process") from None
        try:
            if created:
                _fsync_dir(path.parent)  # the file's name must survive a crash too
            last, recovered = _recover_tail(path, fd, signing_key)
        except BaseException:
            os.close(fd)
            raise
        ledger = cls(path, fd, signing_key, (site, site_kind, instance), last, recovered)
        ledger._check_identity()
        return ledger

    def _check_identity(self) -> None:
        last = self._last
        if last and (last.site, last.instance) != (self._site, self._instance):
            self.close()
            raise AuditError(_not_ours(self.path, last, self._site, self._instance))

    @property
    def last_period_end(self) -> int | None:
        """End of the last recorded period: where the next period may start."""
        return self._last.period_end if self._last else None

    def append(self, counts: PeriodCounts, state: FilterState) -> AuditRecord:
        """Sign and durably append the record of one closed period; returns it."""
        if self._last and counts.start < self._last.period_end:
            raise AuditError(f"{self.path}: period starting {counts.start} overlaps the last one")
        record = sign(self._next_record(counts, state), self._key)
        _write_all(self._fd, record.line())
        os.fsync(self._fd)
        self._last, self.recovered = record, {}
        return record

    def _next_record(self, counts: PeriodCounts, state: FilterState) -> AuditRecord:
        last = self._last
        return AuditRecord(
            seq=last.seq + 1 if last else 0,
            site=self._site,
            site_kind=self._kind,
            instance=self._instance,
            period_start=counts.start,
            period_end=counts.end,
            answers=counts.cube(),
            safe_search={check_label(e, "engine"): n for e, n in counts.safe_search.items() if n},
            index_digest=state.index_digest,
            index_time=state.index_time,
            policy_digest=state.policy_digest,
            version=state.version,
            key_id=key_id(self._key.public_key()),
            prev=last.digest() if last else GENESIS,
            recovered=self.recovered,
            temporary_allows={
                check_label(c, "temporary allow category"): n
                for c, n in counts.temporary_allows.items()
                if n
            },
        )

    def close(self) -> None:
        """Release the lock and the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _recover_tail(
    path: Path, fd: int, key: Ed25519PrivateKey
) -> tuple[AuditRecord | None, dict[str, Any]]:
    data = path.read_bytes()
    recovered: dict[str, Any] = {}
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        recovered = _save_torn(path, data, cut)
        os.ftruncate(fd, cut)
        os.fsync(fd)
        _fsync_dir(path.parent)
        data = data[:cut]
    if not data:
        return None, recovered
    return _last_record(path, data, key.public_key()), recovered


def _last_record(path: Path, data: bytes, public: Ed25519PublicKey) -> AuditRecord:
    """The last complete line of ``data`` as a record signed by ``public``; AuditError if not."""
    lineno = data.count(b"\n")
    last_line = data[data.rfind(b"\n", 0, len(data) - 1) + 1 : -1]
    try:
        last = record_from_json(json.loads(last_line))
    except (ValueError, AuditError) as exc:
        raise AuditError(f"{path}:{lineno}: last record is unreadable ({exc})") from None
    if not signature_ok(last, public):
        raise AuditError(f"{path}:{lineno}: last record is not signed by this key")
    return last


def tail_problem(path: Path, key: Ed25519PrivateKey, site: str, instance: str) -> str | None:
    """Why ``Ledger.open`` would refuse this file, found without locking or changing it.

    A torn last line is not a problem: opening cuts it and keeps it aside."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None  # serve creates it
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror}"
    data = data[: data.rfind(b"\n") + 1]
    if not data:
        return None
    try:
        last = _last_record(path, data, key.public_key())
    except AuditError as exc:
        return str(exc)
    if (last.site, last.instance) != (site, instance):
        return _not_ours(path, last, site, instance)
    return None


def _not_ours(path: Path, last: AuditRecord, site: str, instance: str) -> str:
    return (f"{path}: ledger belongs to site {last.site} instance {last.instance}, "
            f"not {site} instance {instance}")  # fmt: skip
