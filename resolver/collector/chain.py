"""Pure decisions on one pushed ledger line: is it well signed, and does it extend the chain?"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resolver.audit.canonical import GENESIS, canonical_bytes, sha256_hex
from resolver.audit.keys import key_id
from resolver.audit.record import AuditRecord, record_from_json, signature_ok
from resolver.errors import AuditError

# Chain states, worst last. Only evidence signed by the site's own key moves a chain to
# `broken` or `rewritten`: anybody can POST to the push API, so an unsigned or foreign-signed
# line is refused and shown as an incident but must not let a stranger mark a site broken.
VALID, BROKEN, REWRITTEN = "valid", "broken", "rewritten"
_RANK = {VALID: 0, BROKEN: 1, REWRITTEN: 2}


class Rejected(Exception):
    """A line the collector refuses; ``kind`` names why (forged, other-key, replay, gap, ...)."""

    def __init__(self, kind: str, detail: str, seq: int = -1) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.seq = kind, detail, seq


@dataclass(frozen=True, slots=True)
class Line:
    """A pushed line that parsed and verified against the site's key."""

    record: AuditRecord
    raw: str
    digest: str


@dataclass(frozen=True, slots=True)
class Tip:
    """The last accepted record of one instance's chain, and that chain's state."""

    last_seq: int
    last_digest: str
    last_period_end: int
    period: int
    index_time: int
    state: str
    last_active: int = 0  # end of the latest period that answered any query


def parse_line(raw: bytes, site: str, key: Ed25519PublicKey) -> Line:
    """Check form, site and signature of one ledger line (without its newline)."""
    try:
        obj = json.loads(raw)
        record = record_from_json(obj)
    except (ValueError, AuditError) as exc:
        raise Rejected("forged", f"not a ledger record ({exc})") from None
    seq = record.seq
    body = record.body()
    if canonical_bytes(obj, check=False) != raw or {**body, "sig": record.sig} != obj:
        raise Rejected("forged", "not in canonical form", seq)
    if record.site != site:
        raise Rejected("other-site", f"record of site {record.site}, pushed as {site}", seq)
    if not signature_ok(record, key, canonical_bytes(body, check=False)):
        if record.key_id != key_id(key):
            raise Rejected("other-key", f"signed by key {record.key_id}, enrolled {key_id(key)}",
                           seq)  # fmt: skip
        raise Rejected("forged", "signature does not verify", seq)
    return Line(record, raw.decode("utf-8"), sha256_hex(raw))


def judge(line: Line, tip: Tip | None, stored_digest: str | None) -> bool:
    """True to store ``line`` as the chain's next record, False if already stored (the same).

    ``stored_digest`` is the digest already held for ``line``'s seq when that seq is not past
    the tip. Raises Rejected for a replayed old record, a rewrite, a broken link or a gap.
    """
    record = line.record
    seq = record.seq
    if tip is not None and seq <= tip.last_seq:
        if stored_digest != line.digest:
            raise Rejected(REWRITTEN, f"seq {seq} differs from the record acknowledged before",
                           seq)  # fmt: skip
        if seq < tip.last_seq:
            raise Rejected("replay", f"seq {seq} was acknowledged already", seq)
        return False  # the tip itself, sent again as an anchor: pushing twice changes nothing
    expected = tip.last_seq + 1 if tip else 0
    if seq != expected:
        raise Rejected("gap", f"seq {seq} pushed, {expected} expected", seq)
    if record.prev != (tip.last_digest if tip else GENESIS):
        raise Rejected(BROKEN, f"seq {seq} does not link to the record before it", seq)
    if tip is not None and record.period_start < tip.last_period_end:
        raise Rejected(BROKEN, f"seq {seq} overlaps the period before it", seq)
    return True


def worse(state: str, kind: str) -> str:
    """The chain state after a rejection of ``kind`` (only signed evidence moves it)."""
    return kind if _RANK.get(kind, -1) > _RANK[state] else state


def next_tip(line: Line, tip: Tip | None) -> Tip:
    """The tip after accepting ``line``."""
    record = line.record
    period = max(record.period_end - record.period_start, tip.period if tip else 1)
    state = tip.state if tip else VALID
    active = record.period_end if record.queries else (tip.last_active if tip else 0)
    return Tip(record.seq, line.digest, record.period_end, period, record.index_time, state, active)
