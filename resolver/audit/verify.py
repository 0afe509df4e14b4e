"""Offline ledger verification: every line's form, signature, sequence and hash link."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resolver.audit.canonical import GENESIS, canonical_bytes, sha256_hex
from resolver.audit.keys import key_id
from resolver.audit.record import AuditRecord, record_from_json, signature_ok
from resolver.errors import AuditError


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong in a ledger, with its 1-based line number."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``records`` are the lines before the first problem, each verified against its predecessor."""

    path: Path
    records: tuple[AuditRecord, ...]
    problem: Problem | None
    signed: bool  # True when signatures were checked against a key, not the chain alone
    notices: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the whole ledger verifies."""
        return self.problem is None

    def temporary_allows(self) -> dict[str, int]:
        """Temporary allows granted over the verified records, per category."""
        out: dict[str, int] = {}
        for record in self.records:
            for category, n in record.temporary_allows.items():
                out[category] = out.get(category, 0) + n
        return out


def _lines(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    start, number = 0, 1
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            yield number, data[start:], False
            return
        yield number, data[start:end], True
        start, number = end + 1, number + 1


@dataclass(frozen=True, slots=True)
class _Line:
    record: AuditRecord
    signed: bytes  # the canonical body the signature covers
    digest: str  # SHA-256 of the line, what the next record must link to


def _parse(raw: bytes) -> _Line:
    try:
        obj = json.loads(raw)
    except ValueError:
        raise AuditError("not valid JSON") from None
    record = record_from_json(obj)
    body = record.body()
    # The line must be exactly what the writer produces: canonical bytes of the record's own
    # fields, so its hash is the one the next record links to and no byte is unexplained.
    if canonical_bytes(obj, check=False) != raw or {**body, "sig": record.sig} != obj:
        raise AuditError("not in canonical form (sorted keys, no spaces): edited by hand?")
    return _Line(record, canonical_bytes(body, check=False), sha256_hex(raw))


def _link_problem(record: AuditRecord, prev: _Line | None) -> str | None:
    if prev is None:
        if record.seq != 0 or record.prev != GENESIS:
            return "first record does not start the chain (records before it were removed?)"
        return None
    if record.prev != prev.digest:
        return "does not link to the record before it (a record was changed, removed or moved)"
    last = prev.record
    if record.seq != last.seq + 1:
        return f"sequence {record.seq} does not follow {last.seq}"
    if (record.site, record.instance) != (last.site, last.instance):
        return "site or instance differs from the records before it"
    if record.period_start < last.period_end:
        return "period overlaps or precedes the record before it"
    return None


def _sig_problem(line: _Line, key: Ed25519PublicKey | None) -> str | None:
    record = line.record
    if key is None or signature_ok(record, key, line.signed):
        return None
    if record.key_id != key_id(key):
        return f"signed by key {record.key_id}, not by the given key {key_id(key)}"
    return "signature does not verify: the record was altered after signing"


def _check_line(
    raw: bytes, complete: bool, prev: _Line | None, key: Ed25519PublicKey | None
) -> _Line:
    if not complete:
        raise AuditError(f"torn last line ({len(raw)} bytes, no newline): an interrupted write")
    line = _parse(raw)
    problem = _sig_problem(line, key) or _link_problem(line.record, prev)
    if problem:
        raise AuditError(problem)
    return line


def verify_ledger(
    path: Path, key: Ed25519PublicKey | None = None, expect_seq: int | None = None
) -> VerifyResult:
    """Check ``path`` line by line; stop at the first problem. Without a key, the chain only.

    ``expect_seq`` is the last sequence number a party saw before (a collector, an earlier
    audit): a ledger ending below it lost its tail, which nothing inside the file can show.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"{path}: cannot read ledger: {exc.strerror}") from None
    records: list[AuditRecord] = []
    notices: list[str] = []
    problem = Problem(1, "empty ledger") if not data else None
    prev: _Line | None = None
    for number, raw, complete in _lines(data):
        try:
            prev = _check_line(raw, complete, prev, key)
        except AuditError as exc:
            problem = Problem(number, str(exc))
            break
        record = prev.record
        if record.recovered:
            notices.append(f"line {number}: the writer cut a torn tail before it: "
                           f"{dict(record.recovered)}")  # fmt: skip
        records.append(record)
    if problem is None and expect_seq is not None:
        problem = tail_problem(records, expect_seq, len(records) + 1)
    return VerifyResult(path, tuple(records), problem, key is not None, tuple(notices))


def tail_problem(records: list[AuditRecord], expect_seq: int, line: int) -> Problem | None:
    """A Problem when the last sequence number is below the one known to exist."""
    last = records[-1].seq if records else -1
    if last >= expect_seq:
        return None
    return Problem(line, f"ends at sequence {last} but sequence {expect_seq} was seen before: "
                         "records were deleted from the tail")  # fmt: skip
