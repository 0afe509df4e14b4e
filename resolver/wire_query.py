"""Reading a client's query: its header, question and OPT record (RFC 1035 section 4,
RFC 6891), for the hot path.

A well-formed query is read in C (resolver/_query.c); ``parse_query_py`` is the reference
the C is held to, and the path of every error: anything malformed raises ``WireError`` with
the rcode to answer, or ``Unanswerable`` when no reply may be sent at all.
"""

from __future__ import annotations

from ._nametable import scan_query  # C; parse_query_py below is its reference
from .wire import (
    BADVERS,
    FORMERR,
    HEADER_LEN,
    KEY_CD,
    KEY_DO,
    MAX_NAME_LEN,
    NOTIMP,
    OPT_COOKIE,
    OPT_ECS,
    REFUSED,
    TYPE_AXFR,
    TYPE_IXFR,
    TYPE_MAILA,
    TYPE_OPT,
    TYPE_SOA,
    TYPE_TSIG,
    Query,
    Unanswerable,
    WireError,
    skip_name,
)


def parse_query(data: bytes) -> Query:
    """Parse a query's header, question and OPT record; raise WireError or Unanswerable.

    A well-formed query is read in C (resolver/_query.c: 0.95 -> 0.35 µs, 1.65 with EDNS);
    anything else, and every error with the partly parsed query its answer echoes, comes from
    ``parse_query_py``, the reference that tests/test_query_c.py holds the C to."""
    scanned = scan_query(data)
    if scanned is None:
        return parse_query_py(data)
    qend, key, qtype, qclass, edns, udp_size, do, ecs, cookie = scanned
    query = Query(data, qend, key, qtype, qclass)
    if edns:
        query.edns = True
        query.udp_size = udp_size
        query.do = do
        query.ecs = ecs
        query.cookie = cookie
    return query


def parse_query_py(data: bytes) -> Query:
    """``parse_query`` in Python: the reference for _query.c, and the path of every error."""
    size = len(data)
    if size < HEADER_LEN:
        raise Unanswerable("shorter than a header")
    flags_hi = data[2]
    if flags_hi & 0x80:
        raise Unanswerable("QR=1: a response, never answered (reflection loops)")
    if (flags_hi >> 3) & 0x0F != 0:
        raise WireError(NOTIMP, _question_only(data, size), "opcode is not QUERY")
    if data[4] != 0 or data[5] != 1:
        raise WireError(FORMERR, None, "qdcount is not 1")
    if data[6] or data[7] or data[8] or data[9]:
        raise WireError(FORMERR, None, "a query carries no answer or authority records")
    pos = _skip_question_name(data, size)
    if pos + 4 > size:
        raise WireError(FORMERR, None, "truncated question")
    qtype = (data[pos] << 8) | data[pos + 1]
    qclass = (data[pos + 2] << 8) | data[pos + 3]
    qend = pos + 4
    key_flag = KEY_CD if data[3] & 0x10 else 0
    query = Query(data, qend, b"", qtype, qclass)
    arcount = (data[10] << 8) | data[11]
    if arcount:
        _read_additional(query, qend, arcount)
        if query.do:
            key_flag |= KEY_DO
    if qtype == TYPE_OPT or TYPE_TSIG <= qtype <= TYPE_MAILA:
        _refuse_meta_qtype(query)  # after the OPT, so the error answer carries one too
    query.key = data[HEADER_LEN:pos].lower() + data[pos:qend] + bytes((key_flag,))
    return query


def _question_only(data: bytes, size: int) -> Query | None:
    """The question of a packet refused anyway, to echo it (as unbound does) when well formed."""
    if data[4] != 0 or data[5] != 1:
        return None
    try:
        pos = _skip_question_name(data, size)
    except WireError:
        return None
    if pos + 4 > size:
        return None
    qtype = (data[pos] << 8) | data[pos + 1]
    if data[2] & 0x78 == 0x28 and qtype != TYPE_SOA:  # UPDATE: its zone is an SOA (RFC 2136)
        return None
    return Query(data, pos + 4, b"", qtype, 0)


def _refuse_meta_qtype(query: Query) -> None:
    """Query types a forwarder must not pass on (the same answers as unbound gives).

    OPT and TSIG live only in the additional section (RFC 6891 6.1.1, RFC 8945 5) and the
    obsolete MAILB/MAILA are meta-types nobody serves: FORMERR. Zone transfers (IXFR, AXFR)
    are not a resolver's business, and AXFR is not defined over UDP (RFC 5936): REFUSED.
    """
    if query.qtype in (TYPE_IXFR, TYPE_AXFR):
        raise WireError(REFUSED, query, "zone transfers are refused")
    raise WireError(FORMERR, query, f"meta-type {query.qtype} in the question")


def _skip_question_name(data: bytes, size: int) -> int:
    """Offset past the question name; compression in a question is always malformed."""
    pos = HEADER_LEN
    while True:
        if pos >= size:
            raise WireError(FORMERR, None, "truncated question name")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length > 63:
            # 0xC0 is a pointer: the only earlier bytes are the header (nonsense) or this
            # same name (a loop); anything else points forward. 0x40/0x80 are reserved.
            raise WireError(FORMERR, None, "compression or bad label length in question")
        pos += length + 1
        # >=: the root label still to come makes 255 octets of labels 256 in all.
        if pos - HEADER_LEN >= MAX_NAME_LEN:
            raise WireError(FORMERR, None, "question name longer than 255 octets")


def _read_additional(query: Query, pos: int, count: int) -> None:
    data = query.data
    size = len(data)
    seen_opt = False
    for _ in range(count):
        owner = pos
        pos = skip_name(data, pos, size)
        if pos + 10 > size:
            raise WireError(FORMERR, query, "truncated additional record")
        rtype = (data[pos] << 8) | data[pos + 1]
        rdlen = (data[pos + 8] << 8) | data[pos + 9]
        rdata = pos + 10
        end = rdata + rdlen
        if end > size:
            raise WireError(FORMERR, query, "truncated additional rdata")
        if rtype == TYPE_OPT:
            if seen_opt:
                raise WireError(FORMERR, query, "two OPT records")
            seen_opt = True
            if data[owner] != 0:
                raise WireError(FORMERR, query, "OPT owner is not the root")
            _read_opt(query, pos, rdata, end)
        pos = end


def _read_opt(query: Query, pos: int, rdata: int, end: int) -> None:
    data = query.data
    query.edns = True
    query.udp_size = max(512, (data[pos + 2] << 8) | data[pos + 3])
    version = data[pos + 5]
    query.do = bool(data[pos + 6] & 0x80)
    while rdata < end:
        if rdata + 4 > end:
            raise WireError(FORMERR, query, "truncated EDNS option")
        code = (data[rdata] << 8) | data[rdata + 1]
        length = (data[rdata + 2] << 8) | data[rdata + 3]
        start = rdata + 4
        rdata = start + length
        if rdata > end:
            raise WireError(FORMERR, query, "EDNS option overruns OPT")
        if code == OPT_ECS:
            query.ecs = data[start:rdata]
        elif code == OPT_COOKIE:
            query.cookie = data[start:rdata]
    if version != 0:
        raise WireError(BADVERS, query, f"EDNS version {version}")
