"""Building answers on the wire: from a cached body, error answers, truncated answers, OPT."""

from __future__ import annotations

from .response import ScannedAnswer
from .wire import AD, CD, DO_BIT, HEADER_LEN, NOTIMP, OPT_EDE, QR, RA, RD, TC, TYPE_OPT, Query

_RD_CD = RD | CD


def opt_record(udp_size: int, rcode: int = 0, do: bool = False, options: bytes = b"") -> bytes:
    """Our OPT record: version 0, only the DO flag echoed (unknown flags are never echoed)."""
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
