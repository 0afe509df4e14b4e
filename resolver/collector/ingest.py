"""The push API's work: verify pushed ledger lines and store those that extend a site's chain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resolver.audit.keys import inline_public, parse_inline_public
from resolver.collector.chain import Line, Rejected, Tip, judge, next_tip, parse_line, worse
from resolver.collector.db import Database, Tx
from resolver.errors import LachanError

PROVINCE_TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the default province's zone
MAX_LINES = 5000  # per request: the pusher sends more in further requests


class UnknownSite(LachanError):
    """A push for a site that is not enrolled."""


@dataclass(slots=True)
class PushResult:
    """What happened to one request's lines; ``acks`` = last stored seq per instance."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    acks: dict[str, int] = field(default_factory=dict)


def enroll(db: Database, site: str, key: Ed25519PublicKey, now: int) -> None:
    """Enrol (or re-key) ``site``: from now on only records signed by ``key`` are accepted."""
    text = inline_public(key)
    with db.tx() as tx:
        if tx.run("SELECT 1 FROM sites WHERE site = ?" + db.for_update, (site,)):
            tx.run("UPDATE sites SET public_key = ? WHERE site = ?", (text, site))
        else:
            tx.run("INSERT INTO sites (site, public_key, enrolled_at) VALUES (?, ?, ?)",
                   (site, text, now))  # fmt: skip


def site_key(db: Database, site: str) -> Ed25519PublicKey:
    """The enrolled key of ``site``; UnknownSite if it is not enrolled."""
    with db.tx() as tx:
        rows = tx.run("SELECT public_key FROM sites WHERE site = ?", (site,))
    if not rows:
        raise UnknownSite(f"site {site!r} is not enrolled")
    return parse_inline_public(rows[0][0], f"site {site}")


def acks(db: Database, site: str) -> dict[str, int]:
    """The last acknowledged seq of each instance of ``site``."""
    with db.tx() as tx:
        rows = tx.run("SELECT instance, last_seq FROM chains WHERE site = ?", (site,))
    return {instance: int(seq) for instance, seq in rows}


def ingest(
    db: Database, site: str, raws: Sequence[bytes], now: int, tz: tzinfo = PROVINCE_TZ
) -> PushResult:
    """Verify every line against the site's key, then extend each instance's chain in order."""
    key = site_key(db, site)
    result = PushResult()
    by_instance: dict[str, list[Line]] = {}
    unsigned: dict[str, Rejected] = {}
    for raw in raws[:MAX_LINES]:
        try:
            line = parse_line(raw, site, key)
        except Rejected as rej:
            unsigned.setdefault(rej.kind, rej)
            result.rejected.append({"seq": rej.seq, "kind": rej.kind, "detail": rej.detail})
            continue
        by_instance.setdefault(line.record.instance, []).append(line)
    if unsigned:
        _unsigned_incidents(db, site, unsigned.values(), now)
    for instance, lines in by_instance.items():
        _extend(db, site, instance, lines, now, result, tz)
    result.acks = acks(db, site)
    return result


def _unsigned_incidents(db: Database, site: str, first: Iterable[Rejected], now: int) -> None:
    """One incident per kind per request for lines the site's key did not sign: anybody can
    send 5,000 forged lines, and they must not become 5,000 rows (or transactions)."""
    with db.tx() as tx:
        for rej in first:
            _log_incident(tx, site, "", rej, now)


def _log_incident(tx: Tx, site: str, instance: str, rej: Rejected, now: int) -> None:
    tx.run("INSERT INTO incidents (site, instance, seq, kind, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
           (site, instance, rej.seq, rej.kind, rej.detail, now))  # fmt: skip


def _extend(db: Database, site: str, instance: str, lines: list[Line], now: int,
            result: PushResult, tz: tzinfo) -> None:  # fmt: skip
    with db.tx() as tx:
        tip = _tip(tx, db, site, instance)
        start, taken = tip, []
        for line in lines:
            try:
                if not judge(line, tip, _stored(tx, site, instance, line.record.seq, tip)):
                    result.duplicates += 1
                    continue
            except Rejected as rej:
                _log_incident(tx, site, instance, rej, now)
                result.rejected.append({"seq": rej.seq, "kind": rej.kind, "detail": rej.detail})
                if tip is not None:
                    tip = replace(tip, state=worse(tip.state, rej.kind))
                break  # nothing after a refused line can link to the chain
            taken.append(line)
            tip = next_tip(line, tip)
        _store(tx, site, instance, taken, now, tz)
        result.accepted += len(taken)
        if tip is not None and tip != start:
            _save_tip(tx, site, instance, tip, start is None)


def _tip(tx: Tx, db: Database, site: str, instance: str) -> Tip | None:
    # Lock the site's row first: it exists from enrolment on, so two collectors taking the
    # very first push of an instance (no chain row yet) wait for each other too.
    tx.run("SELECT 1 FROM sites WHERE site = ?" + db.for_update, (site,))
    rows = tx.run("SELECT last_seq, last_digest, last_period_end, period, index_time, state,"
                  " last_active"
                  " FROM chains WHERE site = ? AND instance = ?" + db.for_update,
                  (site, instance))  # fmt: skip
    return Tip(*rows[0]) if rows else None


def _stored(tx: Tx, site: str, instance: str, seq: int, tip: Tip | None) -> str | None:
    if tip is None or seq > tip.last_seq:
        return None
    if seq == tip.last_seq:
        return tip.last_digest
    rows = tx.run("SELECT digest FROM records WHERE site = ? AND instance = ? AND seq = ?",
                  (site, instance, seq))  # fmt: skip
    return str(rows[0][0]) if rows else None


def _store(tx: Tx, site: str, instance: str, lines: list[Line], now: int, tz: tzinfo) -> None:
    """Insert the records, and add their counts to the monthly sums (one upsert per sum)."""
    sums: dict[tuple[str, str], int] = {}
    for line in lines:
        r = line.record
        month = datetime.fromtimestamp(r.period_start, tz).strftime("%Y-%m")
        for category, n in [("*", r.queries), *r.blocks_by_category().items()]:
            sums[(month, category)] = sums.get((month, category), 0) + n
    tx.many("INSERT INTO records (site, instance, seq, period_start, period_end, digest, line,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(site, instance, ln.record.seq, ln.record.period_start, ln.record.period_end,
              ln.digest, ln.raw, now) for ln in lines])  # fmt: skip
    tx.many("INSERT INTO monthly (site, month, category, n) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site, month, category) DO UPDATE SET n = monthly.n + excluded.n",
            [(site, month, category, n) for (month, category), n in sums.items()])  # fmt: skip


def _save_tip(tx: Tx, site: str, instance: str, tip: Tip, new: bool) -> None:
    values = (tip.last_seq, tip.last_digest, tip.last_period_end, tip.period, tip.index_time,
              tip.state, tip.last_active, site, instance)  # fmt: skip
    if new:
        tx.run("INSERT INTO chains (last_seq, last_digest, last_period_end, period, index_time,"
               " state, last_active, site, instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               values)  # fmt: skip
    else:
        tx.run("UPDATE chains SET last_seq = ?, last_digest = ?, last_period_end = ?, period = ?,"
               " index_time = ?, state = ?, last_active = ? WHERE site = ? AND instance = ?",
               values)  # fmt: skip
