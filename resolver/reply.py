"""Every reply lachan builds itself, byte by byte, and the one table of extended errors.

The others only choose: which error, which block records, whether to truncate. Here:

- the EDE table (RFC 8914): the INFO-CODEs lachan sends and the extra texts it sends with them;
- OPT: the one OPT record of every answer and of our upstream queries, EDE options;
- header flags and answers around a cached body, with or without extended errors;
- error answers (FORMERR, SERVFAIL, NOTIMP, REFUSED, BADVERS) and TC truncation;
- synthesised answers, whose records are owned by a compression pointer to the question
  (offset 12), so the bytes after the question do not depend on the name asked: blocks
  (resolver/blocks.py chooses their records and keeps them built), the canary, refusals
  (REFUSED + EDE 18 and a text), DDR, the rate limiter's TC and ANY answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from .wire import (
    AD,
    CD,
    DO_BIT,
    HEADER_LEN,
    NOERROR,
    NOTIMP,
    OPT_EDE,
    QR,
    RA,
    RD,
    REFUSED,
    TC,
    TYPE_OPT,
    TYPE_SOA,
    TYPE_SVCB,
    TYPE_TXT,
    Query,
    text_to_wire,
)

if TYPE_CHECKING:
    from .response import ScannedAnswer

# -- the extended errors (RFC 8914) ---------------------------------------------------------
EDE_STALE_ANSWER: Final = 3  # serve-stale after every upstream failed
EDE_FORGED_ANSWER: Final = 4  # a safe-search rewrite
EDE_BLOCKED: Final = 15  # a block the operator chose (policy categories)
EDE_CENSORED: Final = 16  # a block the law requires
EDE_FILTERED: Final = 17  # a block the client's own filter asked for (lists, keywords)
EDE_PROHIBITED: Final = 18  # a client that may not use this resolver
EDE_NAMES: Final = {
    EDE_STALE_ANSWER: "Stale Answer",
    EDE_FORGED_ANSWER: "Forged Answer",
    EDE_BLOCKED: "Blocked",
    EDE_CENSORED: "Censored",
    EDE_FILTERED: "Filtered",
    EDE_PROHIBITED: "Prohibited",
}
# The extra texts sent with them. A block's text is BLOCKED_TEXT filled by the policy
# (resolver/policy/decision.py extra_text), a rewrite's SAFE_SEARCH_TEXT unless its rule has one.
HELP_LINE: Final = "help: 111"  # Vietnam's national child-protection hotline (Tổng đài 111)
BLOCKED_TEXT: Final = "lachan: blocked {label}={value} profile={profile}; " + HELP_LINE
SAFE_SEARCH_TEXT: Final = "lachan: safe search ({engine})"
SAFE_SEARCH_RULE_TEXT: Final = "lachan: safe search engine={engine} profile={profile}"
ACL_REFUSED_TEXT: Final = "lachan: refused by access list"  # EDE 18: not in the access list
UNKNOWN_DEVICE_TEXT: Final = "lachan: unknown device ID {!r}: not in this resolver's devices"
DEVICE_REQUIRED_TEXT: Final = "lachan: this encrypted resolver serves registered devices only"


class Asked(Protocol):
    """What an OPT depends on: a Query, or a fast-path Shape (resolver/fastpath.py)."""

    @property
    def edns(self) -> bool: ...
    @property
    def do(self) -> bool: ...


# -- OPT ------------------------------------------------------------------------------------
_PLAIN_OPTS: dict[tuple[int, int, bool], bytes] = {}  # OPTs without options, made once each


def opt_record(udp_size: int, rcode: int = 0, do: bool = False, options: bytes = b"") -> bytes:
    """Our OPT record: version 0, only the DO flag echoed (unknown flags are never echoed)."""
    if options:
        return _build_opt(udp_size, rcode, do, options)
    # Every miss builds two (ours upstream, the client's answer) from a handful of values.
    opt = _PLAIN_OPTS.get((udp_size, rcode, do))
    if opt is None:
        opt = _build_opt(udp_size, rcode, do, b"")
        if len(_PLAIN_OPTS) < 1024:  # rcodes come from upstreams: bounded anyway
            _PLAIN_OPTS[(udp_size, rcode, do)] = opt
    return opt


def _build_opt(udp_size: int, rcode: int, do: bool, options: bytes) -> bytes:
    return b"".join(
        (
            b"\x00",
            TYPE_OPT.to_bytes(2, "big"),
            udp_size.to_bytes(2, "big"),
            bytes(((rcode >> 4) & 0xFF, 0)),
            (DO_BIT if do else 0).to_bytes(2, "big"),
            len(options).to_bytes(2, "big"),
            options,
        )
    )


def ede_option(info_code: int, extra_text: str = "") -> bytes:
    """An Extended DNS Error option (RFC 8914) for an OPT record's rdata."""
    payload = info_code.to_bytes(2, "big") + extra_text.encode("utf-8")
    return OPT_EDE.to_bytes(2, "big") + len(payload).to_bytes(2, "big") + payload


def opt_for(asked: Asked, udp_size: int, ede: int = 0, text: str = "") -> bytes:
    """The OPT of a synthesised answer: none when the query had none (RFC 6891 7)."""
    if not asked.edns:
        return b""
    return opt_record(udp_size, 0, asked.do, ede_option(ede, text) if ede else b"")


# -- answers around a cached body -----------------------------------------------------------
_RD_CD = RD | CD


def response_flags(query_flags: int, rcode: int, upstream_flags: int = 0) -> int:
    """QR and RA set, RD and CD echoed, AD kept only if the client asked with AD or DO."""
    flags = QR | RA | (query_flags & _RD_CD) | (rcode & 0x0F)
    if upstream_flags & AD and query_flags & AD:
        flags |= AD
    return flags


def from_answer(query: Query, answer: ScannedAnswer, body: bytes, udp_size: int) -> bytes:
    """The client's answer: its ID and question (0x20 case kept) around a cached body."""
    data = query.data
    qflags = (data[2] << 8) | data[3]
    if query.do:
        qflags |= AD  # RFC 6840 5.8: DO also signals the client understands AD
    flags = response_flags(qflags, answer.rcode, answer.flags)
    opt = opt_record(udp_size, answer.rcode, query.do) if query.edns else b""
    arcount = answer.arcount + (1 if opt else 0)
    header = b"".join(
        (
            data[0:2],
            flags.to_bytes(2, "big"),
            b"\x00\x01",
            answer.ancount.to_bytes(2, "big"),
            answer.nscount.to_bytes(2, "big"),
            arcount.to_bytes(2, "big"),
        )
    )
    return b"".join((header, data[HEADER_LEN : query.qend], body, opt))


def with_ede(
    query: Query, answer: ScannedAnswer, body: bytes, udp_size: int, options: bytes
) -> bytes:
    """``from_answer`` whose OPT carries ``options`` (extended errors) when there are any."""
    response = from_answer(query, answer, body, udp_size)
    if query.edns and options:
        # replace the plain OPT (11 bytes, always last) with one carrying the options
        response = response[:-11] + opt_record(udp_size, answer.rcode, query.do, options)
    return response


# -- errors and truncation ------------------------------------------------------------------
def error(data: bytes, rcode: int, query: Query | None, udp_size: int, ede: bytes = b"") -> bytes:
    """An error answer: the header echoed with QR set, the question when it was readable."""
    opcode_rd = data[2] & 0x79  # opcode and RD echoed
    flags_lo = (data[3] & CD) | RA | (rcode & 0x0F)
    if rcode == NOTIMP:
        # An opcode we do not know: no RA, promise nothing about it; CD echoed, as unbound.
        flags_lo = (data[3] & CD) | NOTIMP
    if query is not None:
        question = data[HEADER_LEN : query.qend]
        edns = query.edns or rcode > 0x0F
        opt = opt_record(udp_size, rcode, query.do, ede) if edns else b""
    else:
        question, opt = b"", b""
    header = b"".join(
        (
            data[0:2],
            bytes((0x80 | opcode_rd, flags_lo)),
            b"\x00\x01" if question else b"\x00\x00",
            b"\x00\x00\x00\x00",
            b"\x00\x01" if opt else b"\x00\x00",
        )
    )
    return header + question + opt


def truncated(response: bytes, query: Query, udp_size: int) -> bytes:
    """TC=1 with only the question (and OPT): the client retries over TCP (RFC 7766)."""
    data = query.data
    flags = ((response[2] << 8) | response[3]) | TC
    opt = opt_record(udp_size, 0, query.do) if query.edns else b""
    return b"".join(
        (
            data[0:2],
            flags.to_bytes(2, "big"),
            b"\x00\x01\x00\x00\x00\x00",
            b"\x00\x01" if opt else b"\x00\x00",
            data[HEADER_LEN : query.qend],
            opt,
        )
    )


def fit_udp(response: bytes, query: Query, max_udp: int) -> bytes:
    """The response, or its truncated form when it exceeds what the client can receive."""
    limit = min(query.udp_size, max_udp) if query.edns else 512
    if len(response) <= limit:
        return response
    return truncated(response, query, max_udp)


# -- synthesised answers --------------------------------------------------------------------
_QUESTION_POINTER = b"\xc0\x0c"
_CLASS_IN = b"\x00\x01"
# The SOA of synthesised negative answers: a name under .arpa that no one else serves.
_SOA_MNAME = text_to_wire("lachan.arpa")
_SOA_RNAME = text_to_wire("block.lachan.arpa")
_TYPE_HINFO = 13
_HINFO_TTL = 3600
_DDR_TTL = 300  # the SVCB records of _dns.resolver.arpa
_HINFO_RDATA = b"\x07RFC8482\x00"  # CPU "RFC8482", OS "", as RFC 8482 4.2 says


def shape(rcode: int, ancount: int, nscount: int, opt: bytes, tc: bool = False) -> int:
    """The header of an answer as one int: rcode | ancount << 8 | nscount << 24 | arcount
    << 40 (1 with an OPT) | TC << 56, unpacked by ``head``."""
    return rcode | ancount << 8 | nscount << 24 | (1 if opt else 0) << 40 | (1 if tc else 0) << 56


def heads(shape: int) -> tuple[bytes, ...]:
    """Header bytes 2-12 for a shape, for each RD/CD combination (index RD | CD >> 3, which
    is ``(data[2] & 1) | ((data[3] >> 3) & 2)`` of the query)."""
    return tuple(head(shape, rd_cd) for rd_cd in (0, RD, CD, RD | CD))


def head(shape: int, rd_cd: int) -> bytes:
    """Flags (QR, RA, the query's RD and CD, TC, the rcode) and the four counts of a shape."""
    flags = QR | RA | rd_cd | (shape & 0x0F) | (TC if shape >> 56 else 0)
    return b"".join(
        (
            flags.to_bytes(2, "big"),
            b"\x00\x01",
            ((shape >> 8) & 0xFFFF).to_bytes(2, "big"),
            ((shape >> 24) & 0xFFFF).to_bytes(2, "big"),
            ((shape >> 40) & 0xFFFF).to_bytes(2, "big"),
        )
    )


def assemble(query: Query, shape: int, body: bytes) -> bytes:
    """ID, the header of ``shape``, the query's question (case kept) and ``body``."""
    data = query.data
    header = head(shape, ((data[2] << 8) | data[3]) & (RD | CD))
    return b"".join((data[0:2], header, data[HEADER_LEN : query.qend], body))


def record(rtype: int, ttl: int, rdata: bytes, rclass: bytes = _CLASS_IN) -> bytes:
    """A record owned by the question name (a pointer to offset 12)."""
    return b"".join(
        (
            _QUESTION_POINTER,
            rtype.to_bytes(2, "big"),
            rclass,
            ttl.to_bytes(4, "big"),
            len(rdata).to_bytes(2, "big"),
            rdata,
        )
    )


def soa_record(ttl: int) -> bytes:
    """An SOA whose TTL and MINIMUM are ``ttl``, so clients cache the block that long
    (RFC 2308: the negative TTL is the smaller of the two)."""
    numbers = b"".join(n.to_bytes(4, "big") for n in (1, 3600, 600, 86400, ttl))
    return record(TYPE_SOA, ttl, _SOA_MNAME + _SOA_RNAME + numbers)


def txt_rdata(text: str) -> bytes:
    """One character-string of at most 255 bytes."""
    raw = text.encode("utf-8")[:255]
    return bytes((len(raw),)) + raw


def refused(query: Query, udp_size: int, text: str = ACL_REFUSED_TEXT) -> bytes:
    """REFUSED with EDE 18 Prohibited and a short text saying why: never more than the
    query plus the EDE option, so a refused client cannot use us as an amplifier."""
    opt = opt_for(query, udp_size, EDE_PROHIBITED, text)
    return assemble(query, shape(REFUSED, 0, 0, opt), opt)


def canary(query: Query, udp_size: int, texts: tuple[str, ...]) -> bytes:
    """TXT records for the status name (NODATA for other types), TTL 0: always fresh."""
    opt = opt_for(query, udp_size)
    if query.qtype != TYPE_TXT:
        return assemble(query, shape(NOERROR, 0, 1, opt), soa_record(0) + opt)
    records = b"".join(record(TYPE_TXT, 0, txt_rdata(text)) for text in texts)
    return assemble(query, shape(NOERROR, len(texts), 0, opt), records + opt)


def designated(query: Query, udp_size: int, svcb: tuple[bytes, ...]) -> bytes:
    """The SVCB records of _dns.resolver.arpa (DDR, RFC 9462) from their rdata."""
    opt = opt_for(query, udp_size)
    records = b"".join(record(TYPE_SVCB, _DDR_TTL, rdata) for rdata in svcb)
    return assemble(query, shape(NOERROR, len(svcb), 0, opt), records + opt)


def minimal(query: Query, udp_size: int, rcode: int, tc: bool = False) -> bytes:
    """The question only, no extended error: the rate limiter's TC=1 (no larger than the
    query, and a real client retries over TCP) and its plain REFUSED for ANY."""
    opt = opt_for(query, udp_size)  # RFC 6891: EDNS answered with EDNS
    return assemble(query, shape(rcode, 0, 0, opt, tc), opt)


def hinfo(query: Query, udp_size: int) -> bytes:
    """RFC 8482's answer to ANY: one HINFO "RFC8482", in the question's class."""
    opt = opt_for(query, udp_size)
    rclass = query.data[query.qend - 2 : query.qend]
    rr = record(_TYPE_HINFO, _HINFO_TTL, _HINFO_RDATA, rclass)
    return assemble(query, shape(NOERROR, 1, 0, opt), rr + opt)
