"""One ledger record: its fields, its canonical body, its signature and its hash."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from resolver.audit.canonical import canonical_bytes, sha256_hex
from resolver.audit.label import LABEL
from resolver.errors import AuditError

FORMAT = "lachan-audit/1"
SITE_KINDS = ("school", "isp", "other")
BLOCKED = "blocked"

DIGEST = re.compile(r"[A-Za-z0-9_+/=:.-]{1,200}")
HEX64 = re.compile(r"[0-9a-f]{64}")

# answers[action][category][profile] = count
Cube = Mapping[str, Mapping[str, Mapping[str, int]]]

# Optional fields a record may carry besides the required ones. Each is written only when it has
# something to say, so a record without it is byte for byte what older writers produced and
# older readers accept. ``temporary_allows`` (format 1): ``{"format": 1, "granted":
# {category: count}}``, the temporary allows teachers granted in the period, per category of
# the block they lifted; never a name, a profile's client or a teacher.
TEMPORARY_ALLOWS = "temporary_allows"
ALLOWS_FORMAT = 1


def check_label(value: object, where: str) -> str:
    """Return ``value`` if it is a bounded label, else raise AuditError naming ``where``."""
    if not isinstance(value, str) or not LABEL.fullmatch(value):
        raise AuditError(f"{where}: {value!r} is not a label ([a-z0-9_-], no dots or colons)")
    return value


def iso(ts: int, tz: tzinfo = UTC) -> str:
    """Unix seconds to ``2026-11-28T14:00:00Z``, or with ``tz`` ``2026-11-28T21:00:00+07:00``."""
    if tz is UTC:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def parse_iso(text: object, where: str, tz: tzinfo = UTC) -> int:
    """``2026-11-28T14:00:00Z`` (or a date) to Unix seconds; naive times are in ``tz``."""
    if not isinstance(text, str):
        raise AuditError(f"{where}: expected an ISO 8601 time, got {text!r}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AuditError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A signed aggregate of one period at one instance of one site."""

    seq: int
    site: str
    site_kind: str
    instance: str
    period_start: int
    period_end: int
    answers: Cube
    safe_search: Mapping[str, int]
    index_digest: str
    index_time: int
    policy_digest: str
    version: str
    key_id: str
    prev: str
    sig: str = ""
    recovered: Mapping[str, Any] = field(default_factory=dict)
    temporary_allows: Mapping[str, int] = field(default_factory=dict)  # category -> granted

    @property
    def queries(self) -> int:
        """Every answered query in the period, whatever the action."""
        return sum(n for cats in self.answers.values() for p in cats.values() for n in p.values())

    def blocks_by_category(self) -> dict[str, int]:
        """Blocked answers per category, summed over profiles."""
        cats = self.answers.get(BLOCKED, {})
        return {cat: sum(per.values()) for cat, per in cats.items()}

    def body(self) -> dict[str, Any]:
        """The signed fields: everything but the signature."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "seq": self.seq,
            "site": self.site,
            "site_kind": self.site_kind,
            "instance": self.instance,
            "period_start": iso(self.period_start),
            "period_end": iso(self.period_end),
            "queries": self.queries,
            "answers": _plain(self.answers),
            "safe_search": dict(self.safe_search),
            "index_digest": self.index_digest,
            "index_time": iso(self.index_time),
            "policy_digest": self.policy_digest,
            "version": self.version,
            "key_id": self.key_id,
            "prev": self.prev,
        }
        if self.recovered:
            out["recovered"] = dict(self.recovered)
        if self.temporary_allows:
            granted = dict(sorted(self.temporary_allows.items()))
            out[TEMPORARY_ALLOWS] = {"format": ALLOWS_FORMAT, "granted": granted}
        return out

    def line(self) -> bytes:
        """The ledger line: canonical JSON of body + signature, then a newline."""
        return canonical_bytes({**self.body(), "sig": self.sig}) + b"\n"

    def digest(self) -> str:
        """The hash the next record links to (covers the signature too)."""
        return sha256_hex(self.line()[:-1])


def _plain(cube: Cube) -> dict[str, dict[str, dict[str, int]]]:
    return {a: {c: dict(p) for c, p in cats.items()} for a, cats in cube.items()}


def sign(record: AuditRecord, key: Ed25519PrivateKey) -> AuditRecord:
    """Return ``record`` with its Ed25519 signature over the canonical body."""
    sig = key.sign(canonical_bytes(record.body()))
    return replace(record, sig=base64.b64encode(sig).decode("ascii"))


def signature_ok(record: AuditRecord, key: Ed25519PublicKey, signed: bytes | None = None) -> bool:
    """True if ``record.sig`` signs its body (``signed``: those canonical bytes, if known)."""
    message = signed if signed is not None else canonical_bytes(record.body())
    try:
        key.verify(base64.b64decode(record.sig, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


_FIELDS = (
    "format", "seq", "site", "site_kind", "instance", "period_start", "period_end", "queries",
    "answers", "safe_search", "index_digest", "index_time", "policy_digest", "version",
    "key_id", "prev", "sig",
)  # fmt: skip


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AuditError(f"{where}: {value!r} is not a non-negative integer")
    return value


def _cube(value: object) -> dict[str, dict[str, dict[str, int]]]:
    if not isinstance(value, dict):
        raise AuditError("answers: not an object")
    out: dict[str, dict[str, dict[str, int]]] = {}
    for action, cats in value.items():
        check_label(action, "answers")
        if not isinstance(cats, dict):
            raise AuditError(f"answers.{action}: not an object")
        out[action] = {}
        for cat, profiles in cats.items():
            check_label(cat, f"answers.{action}")
            if not isinstance(profiles, dict):
                raise AuditError(f"answers.{action}.{cat}: not an object")
            out[action][cat] = {
                check_label(p, f"answers.{action}.{cat}"): _count(n, f"answers.{action}.{cat}.{p}")
                for p, n in profiles.items()
            }
    return out


def _allows(value: object) -> dict[str, int]:
    """The ``temporary_allows`` field's counts ({} when absent); a format it does not know is
    refused by name, so an old reader says what to upgrade rather than miscounting."""
    if value is None:
        return {}
    where = TEMPORARY_ALLOWS
    if not isinstance(value, dict) or set(value) != {"format", "granted"}:
        raise AuditError(f"{where}: expected {{format, granted}}, got {value!r}")
    if value["format"] != ALLOWS_FORMAT:
        raise AuditError(f"{where}.format: {value['format']!r} is not {ALLOWS_FORMAT} "
                         "(a newer lachan wrote it)")  # fmt: skip
    granted = value["granted"]
    if not isinstance(granted, dict) or not granted:
        raise AuditError(f"{where}.granted: not a non-empty object")
    out = {check_label(c, f"{where}.granted"): _count(n, f"{where}.granted.{c}")
           for c, n in granted.items()}  # fmt: skip
    if not all(out.values()):
        raise AuditError(f"{where}.granted: counts must be positive")
    return out


def _text(obj: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise AuditError(f"{key}: {value!r} is malformed")
    return value


def record_from_json(obj: object) -> AuditRecord:
    """Build a record from a parsed ledger line; every field is checked, unknown keys refused."""
    if not isinstance(obj, dict):
        raise AuditError("not a JSON object")
    missing = [k for k in _FIELDS if k not in obj]
    extra = sorted(set(obj) - set(_FIELDS) - {"recovered", TEMPORARY_ALLOWS})
    if missing or extra:
        raise AuditError(f"missing fields {missing}, unknown fields {extra}")
    if obj["format"] != FORMAT:
        raise AuditError(f"format: {obj['format']!r} is not {FORMAT}")
    if obj["site_kind"] not in SITE_KINDS:
        raise AuditError(f"site_kind: {obj['site_kind']!r} is not one of {SITE_KINDS}")
    recovered = obj.get("recovered", {})
    if not isinstance(recovered, dict) or not isinstance(obj["safe_search"], dict):
        raise AuditError("recovered/safe_search: not an object")
    record = AuditRecord(
        seq=_count(obj["seq"], "seq"),
        site=check_label(obj["site"], "site"),
        site_kind=obj["site_kind"],
        instance=check_label(obj["instance"], "instance"),
        period_start=parse_iso(obj["period_start"], "period_start"),
        period_end=parse_iso(obj["period_end"], "period_end"),
        answers=_cube(obj["answers"]),
        safe_search={
            check_label(k, "safe_search"): _count(v, f"safe_search.{k}")
            for k, v in obj["safe_search"].items()
        },
        index_digest=_text(obj, "index_digest", DIGEST),
        index_time=parse_iso(obj["index_time"], "index_time"),
        policy_digest=_text(obj, "policy_digest", DIGEST),
        version=_text(obj, "version", DIGEST),
        key_id=_text(obj, "key_id", re.compile(r"[0-9a-f]{16}")),
        prev=_text(obj, "prev", HEX64),
        sig=_text(obj, "sig", re.compile(r"[A-Za-z0-9+/=]{1,200}")),
        recovered=recovered,
        temporary_allows=_allows(obj.get(TEMPORARY_ALLOWS)),
    )
    if _count(obj["queries"], "queries") != record.queries:
        raise AuditError(f"queries: {obj['queries']} is not the sum of answers ({record.queries})")
    if record.period_end <= record.period_start:
        raise AuditError("period_end is not after period_start")
    return record
