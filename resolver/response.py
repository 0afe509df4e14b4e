"""Reading an upstream answer into what the cache keeps: sections without OPT, TTL offsets.

An answer is cached as its sections' bytes exactly as the upstream sent them (names stay
compressed: offsets are unchanged because the question we re-attach has the same length),
plus the offsets of every TTL so a hit can count TTLs down without parsing again.
"""

from __future__ import annotations

from typing import NamedTuple

from ._nametable import scan_answer as _c_scan
from .wire import (
    FORMERR,
    HEADER_LEN,
    NOERROR,
    NXDOMAIN,
    TC,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_MX,
    TYPE_NS,
    TYPE_OPT,
    TYPE_PTR,
    TYPE_SOA,
    TYPE_TXT,
    WireError,
    check_name,
    read_name,
    skip_name,
)


class ScannedAnswer(NamedTuple):
    """An upstream answer split for caching; ``body`` is everything after the question.

    A NamedTuple rather than a frozen dataclass: as immutable, and several times cheaper to
    build, which every cache miss does.
    """

    flags: int  # upstream header flags (QR, AA, TC, RD, RA, AD, CD, rcode)
    rcode: int
    ancount: int
    nscount: int
    arcount: int  # without the OPT record, which the cache never keeps
    body: bytes
    ttl_offsets: tuple[int, ...]  # offsets into ``body`` of each record's 32-bit TTL
    min_ttl: int  # smallest TTL of any record, or the negative TTL for a negative answer
    negative: bool
    cacheable: bool
    cname_targets: tuple[bytes, ...]  # uncompressed wire names of CNAME targets in order
    max_ttl: int = 0x7FFFFFFF  # largest TTL of any record (lets the cache skip a re-render)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TC)


_new_answer = tuple.__new__  # a ScannedAnswer from the C scanner's tuple, with no Python frame


def scan_answer(msg: bytes, qend: int) -> ScannedAnswer:
    """Split an upstream message whose question ends at ``qend``; raise WireError if bad.

    The C scanner (resolver/_wire.c); ``scan_answer_py`` is the reference it is held to
    (tests/test_response_c.py)."""
    scanned = _c_scan(msg, qend)
    if scanned.__class__ is str:
        raise WireError(FORMERR, None, scanned)
    return _new_answer(ScannedAnswer, scanned)


def scan_answer_py(msg: bytes, qend: int) -> ScannedAnswer:
    """Split an upstream message whose question ends at ``qend``; raise WireError if bad."""
    size = len(msg)
    if size < HEADER_LEN:
        raise WireError(FORMERR, None, "answer shorter than a header")
    counts = [(msg[i] << 8) | msg[i + 1] for i in (6, 8, 10)]
    flags = (msg[2] << 8) | msg[3]
    rcode = flags & 0x0F
    ttl_offsets: list[int] = []
    cname_targets: list[bytes] = []
    min_ttl = 0xFFFFFFFF
    max_ttl = 0
    soa_ttl = -1
    opt_range: tuple[int, int] | None = None
    pos = qend
    for section, count in enumerate(counts):
        for _ in range(count):
            owner = pos
            pos = check_name(msg, pos)
            if pos + 10 > size:
                raise WireError(FORMERR, None, "truncated record in answer")
            rtype = (msg[pos] << 8) | msg[pos + 1]
            ttl = int.from_bytes(msg[pos + 4 : pos + 8], "big")
            rdlen = (msg[pos + 8] << 8) | msg[pos + 9]
            rdata = pos + 10
            end = rdata + rdlen
            if end > size:
                raise WireError(FORMERR, None, "truncated rdata in answer")
            if rtype == TYPE_OPT:
                if opt_range is not None or section != 2:
                    raise WireError(FORMERR, None, "two OPT records, or one outside additional")
                opt_range = (owner, end)
                rcode |= msg[pos + 4] << 4  # extended rcode bits
            else:
                if ttl & 0x80000000:
                    ttl = 0  # RFC 2181 8: a TTL with the top bit set is treated as zero
                ttl_offsets.append(pos + 4)
                if ttl < min_ttl:
                    min_ttl = ttl
                if ttl > max_ttl:
                    max_ttl = ttl
                _check_rdata(msg, rtype, rdata, end)
                if section == 1 and rtype == TYPE_SOA:
                    soa_ttl = min(ttl, _soa_minimum(msg, rdata, end))
                elif section == 0 and rtype == TYPE_CNAME:
                    cname_targets.append(read_name(msg, rdata)[0])
            pos = end
    if pos != size:
        msg = msg[:pos]  # bytes after the counted records are dropped, never passed on
    return _assemble(
        msg, qend, flags, rcode, counts, ttl_offsets, (min_ttl, max_ttl), soa_ttl, opt_range,
        cname_targets,
    )  # fmt: skip


def _assemble(
    msg: bytes,
    qend: int,
    flags: int,
    rcode: int,
    counts: list[int],
    ttl_offsets: list[int],
    ttl_range: tuple[int, int],
    soa_ttl: int,
    opt_range: tuple[int, int] | None,
    cname_targets: list[bytes],
) -> ScannedAnswer:
    min_ttl, max_ttl = ttl_range
    arcount = counts[2]
    body = msg[qend:]
    if opt_range is not None:
        start, end = opt_range
        if end != len(msg) and _has_pointer_after(msg, end):
            raise WireError(FORMERR, None, "OPT is not last and later names are compressed")
        body = msg[qend:start] + msg[end:]
        ttl_offsets = [o if o < start else o - (end - start) for o in ttl_offsets]
        arcount -= 1
    negative = rcode == NXDOMAIN or (rcode == NOERROR and counts[0] == 0)
    if negative:
        # RFC 2308 5: a negative answer lives as long as the SOA's TTL and MINIMUM allow;
        # without an SOA it must not be cached.
        min_ttl = soa_ttl
    cacheable = rcode in (NOERROR, NXDOMAIN) and not flags & TC and min_ttl >= 0
    return ScannedAnswer(
        flags=flags,
        rcode=rcode,
        ancount=counts[0],
        nscount=counts[1],
        arcount=arcount,
        body=body,
        ttl_offsets=tuple(o - qend for o in ttl_offsets),
        min_ttl=max(min_ttl, 0) if min_ttl != 0xFFFFFFFF else 0,
        negative=negative,
        cacheable=cacheable,
        cname_targets=tuple(cname_targets),
        max_ttl=max_ttl,
    )


# Rdata that clients parse strictly: fixed sizes, and the RFC 1035 types whose names may be
# compressed (RFC 3597 4). Anything else is passed on as opaque bytes.
_FIXED_SIZE = {TYPE_A: 4, TYPE_AAAA: 16}
_ONE_NAME = frozenset((TYPE_NS, TYPE_CNAME, TYPE_PTR))


def _check_rdata(msg: bytes, rtype: int, rdata: int, end: int) -> None:
    """Raise WireError for rdata that would make the answer we pass on malformed."""
    size = _FIXED_SIZE.get(rtype)
    if size is not None:
        ok = end - rdata == size
    elif rtype in _ONE_NAME:
        ok = check_name(msg, rdata) == end
    elif rtype == TYPE_MX:
        ok = end - rdata > 2 and check_name(msg, rdata + 2) == end
    elif rtype == TYPE_TXT:
        pos = rdata
        while pos < end:
            pos += msg[pos] + 1
        ok = pos == end and end > rdata
    elif rtype == TYPE_SOA:
        _soa_minimum(msg, rdata, end)
        return
    else:
        return  # other types are opaque (RFC 3597): their names may not be compressed
    if not ok:
        raise WireError(FORMERR, None, f"malformed rdata of type {rtype}")


def _soa_minimum(msg: bytes, rdata: int, end: int) -> int:
    pos = check_name(msg, rdata)
    pos = check_name(msg, pos)
    if pos + 20 != end:
        raise WireError(FORMERR, None, "malformed SOA rdata")
    return int.from_bytes(msg[end - 4 : end], "big")


def _has_pointer_after(msg: bytes, start: int) -> bool:
    # Conservative: any byte with the pointer bits set may be a pointer. Only used in the
    # rare case of an OPT record that is not the last record.
    return any(b & 0xC0 == 0xC0 for b in msg[start:])


def question_end(msg: bytes) -> int:
    """Offset past the question of a message with qdcount 1."""
    pos = skip_name(msg, HEADER_LEN, len(msg))
    if pos + 4 > len(msg):
        raise WireError(FORMERR, None, "truncated question")
    return pos + 4
