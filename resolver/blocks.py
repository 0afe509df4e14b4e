"""Synthesised answers that never reach an upstream: blocks, the canary, refusals.

Every record's owner is a compression pointer to the question (offset 12), so the bytes after
the question do not depend on the name asked: they are built once per shape (mode, type
family, TTL, EDE text, EDNS/DO) and reused for every blocked name.
"""

from __future__ import annotations

import ipaddress

from .acl import EDE_PROHIBITED
from .fastpath import Shape
from .localdata import records_for
from .policy.decision import AnswerMode, Block, Reason
from .synth import ede_option, opt_record
from .wire import (
    CD,
    HEADER_LEN,
    NOERROR,
    NXDOMAIN,
    QR,
    RA,
    RD,
    REFUSED,
    TYPE_A,
    TYPE_AAAA,
    TYPE_SOA,
    TYPE_TXT,
    Query,
    text_to_wire,
)

_QUESTION_POINTER = b"\xc0\x0c"
_CLASS_IN = b"\x00\x01"
# The SOA of synthesised negative answers: a name under .arpa that no one else serves.
_SOA_MNAME = text_to_wire("lachan.arpa")
_SOA_RNAME = text_to_wire("block.lachan.arpa")
REFUSED_TEXT = "lachan: refused by access list"  # EDE 18 extra text of an ACL refusal


class BlockAnswers:
    """Prebuilt answer bodies; one instance per serving snapshot (profiles may change)."""

    def __init__(self, udp_size: int, block_pages: dict[str, tuple[bytes | None, bytes | None]]):
        self.udp_size = udp_size
        self._block_pages = block_pages  # profile -> (A rdata, AAAA rdata) of its block page
        self._bodies: dict[tuple[object, ...], tuple[tuple[bytes, ...], bytes]] = {}
        self._by_block: dict[int, tuple[Block, dict[int, tuple[tuple[bytes, ...], bytes]]]] = {}
        # SVCB rdata for _dns.resolver.arpa (resolver/ddr.py) when encrypted listeners exist:
        # DDR then upgrades clients to our DoT/DoH instead of being blocked (set by the owner).
        self.ddr: tuple[bytes, ...] = ()
        self.ddr_name = b""

    def answer(self, query: Query, block: Block) -> bytes | None:
        """The wire answer for a blocked query, or None when the rule says drop."""
        if block.mode is AnswerMode.DROP:
            return None
        if self.ddr and block.reason is Reason.BYPASS and query.qtype == 64:  # SVCB
            if query.data[HEADER_LEN : query.qend - 4].lower() == self.ddr_name:
                return self._designated(query)
        # Blocks from lists are shared objects (one per index template and profile), so the
        # finished header and body are found by the block's identity: no shape key to hash.
        # The entry holds the block, so its id cannot be reused while the entry exists.
        known = self._by_block.get(id(block))
        if known is None or known[0] is not block:
            if len(self._by_block) >= 4096:
                self._by_block.clear()
            known = self._by_block[id(block)] = (block, {})
        variants = known[1]
        variant = query.qtype << 2 | query.edns << 1 | query.do
        built = variants.get(variant)
        if built is None:
            if len(variants) >= 64:
                variants.clear()  # bounded under a spray of query types
            built = variants[variant] = self._shaped(query, block)
        heads, body = built
        data = query.data
        # RD and CD are echoed: heads holds the header for each of their four combinations.
        head = heads[(data[2] & 1) | ((data[3] >> 3) & 2)]
        return data[:2] + head + data[HEADER_LEN : query.qend] + body

    def _designated(self, query: Query) -> bytes:
        opt = self._opt(query, 0, "", 0)
        records = b"".join(record(64, 300, rdata) for rdata in self.ddr)
        return _assemble(query, _shape(NOERROR, len(self.ddr), 0, opt), records + opt)

    def prepared(self, block: Block, shape: Shape) -> tuple[tuple[bytes, ...], bytes]:
        """(headers by RD/CD, body) of the answer to a query of ``shape`` blocked by ``block``:
        the answer is ID + header + the query's question + body (resolver/fastpath.py)."""
        return self._shaped(shape, block)

    def _shaped(self, query: Query | Shape, block: Block) -> tuple[tuple[bytes, ...], bytes]:
        family = query.qtype if query.qtype in (TYPE_A, TYPE_AAAA) else 0
        if block.mode is AnswerMode.LOCAL:
            family = query.qtype  # TXT local data answers TXT: every type is its own shape
        shape = (
            block.mode,
            family,
            block.ttl,
            block.ede,
            block.extra_text,
            block.profile,
            query.edns,
            query.do,
            block.local,
        )
        built = self._bodies.get(shape)
        if built is None:
            if len(self._bodies) > 4096:
                self._bodies.clear()
            counts, body = self._build(query, block, family)
            built = self._bodies[shape] = (_heads(counts), body)
        return built

    def _build(self, query: Query | Shape, block: Block, family: int) -> tuple[int, bytes]:
        mode = block.mode
        opt = self._opt(query, block.ede, block.extra_text, 0)
        if mode is AnswerMode.LOCAL:
            found = records_for(block.local, family)
            if found:
                body = b"".join(record(family, block.ttl, rdata) for rdata in found)
                return _shape(NOERROR, len(found), 0, opt), body + opt
            return _shape(NOERROR, 0, 1, opt), soa_record(block.ttl) + opt
        if mode is AnswerMode.REFUSED:
            return _shape(REFUSED, 0, 0, opt), opt
        if mode is AnswerMode.NXDOMAIN:
            return _shape(NXDOMAIN, 0, 1, opt), soa_record(block.ttl) + opt
        address = self._address(mode, family, block.profile)
        if address is None:  # NODATA, or NULL/BLOCKPAGE for a type without an address
            return _shape(NOERROR, 0, 1, opt), soa_record(block.ttl) + opt
        rtype = TYPE_A if len(address) == 4 else TYPE_AAAA
        return _shape(NOERROR, 1, 0, opt), record(rtype, block.ttl, address) + opt

    def _address(self, mode: AnswerMode, family: int, profile: str) -> bytes | None:
        if family == 0 or mode is AnswerMode.NODATA:
            return None
        if mode is AnswerMode.NULL:
            return bytes(4) if family == TYPE_A else bytes(16)
        if mode is AnswerMode.BLOCKPAGE:
            v4, v6 = self._block_pages.get(profile, (None, None))
            return v4 if family == TYPE_A else v6
        return None

    def _opt(self, query: Query | Shape, ede: int, text: str, rcode: int) -> bytes:
        if not query.edns:
            return b""
        return opt_record(self.udp_size, rcode, query.do, ede_option(ede, text) if ede else b"")

    def canary(self, query: Query, texts: tuple[str, ...]) -> bytes:
        """TXT records for the status name (NODATA for other types), TTL 0: always fresh."""
        opt = self._opt(query, 0, "", 0)
        if query.qtype != TYPE_TXT:
            return _assemble(query, _shape(NOERROR, 0, 1, opt), soa_record(0) + opt)
        records = b"".join(record(TYPE_TXT, 0, _txt(text)) for text in texts)
        return _assemble(query, _shape(NOERROR, len(texts), 0, opt), records + opt)

    def refused(self, query: Query, text: str = REFUSED_TEXT) -> bytes:
        """REFUSED with EDE 18 Prohibited and a short text saying why: never more than the
        query plus the EDE option, so a refused client cannot use us as an amplifier."""
        opt = self._opt(query, EDE_PROHIBITED, text, 0)
        return _assemble(query, _shape(REFUSED, 0, 0, opt), opt)


def _shape(rcode: int, ancount: int, nscount: int, opt: bytes) -> int:
    # rcode | ancount << 8 | nscount << 24 | arcount << 40, unpacked in _assemble
    return rcode | ancount << 8 | nscount << 24 | (1 if opt else 0) << 40


def _heads(shape: int) -> tuple[bytes, ...]:
    """Header bytes 2-12 for a shape, for each RD/CD combination (index RD | CD >> 3, which
    is ``(data[2] & 1) | ((data[3] >> 3) & 2)`` of the query)."""
    return tuple(_head(shape, rd_cd) for rd_cd in (0, RD, CD, RD | CD))


def _head(shape: int, rd_cd: int) -> bytes:
    """Flags (QR, RA, the query's RD and CD, the rcode) and the four counts of a shape."""
    flags = QR | RA | rd_cd | (shape & 0x0F)
    return b"".join(
        (
            flags.to_bytes(2, "big"),
            b"\x00\x01",
            ((shape >> 8) & 0xFFFF).to_bytes(2, "big"),
            ((shape >> 24) & 0xFFFF).to_bytes(2, "big"),
            ((shape >> 40) & 0xFFFF).to_bytes(2, "big"),
        )
    )


def _assemble(query: Query, shape: int, body: bytes) -> bytes:
    data = query.data
    head = _head(shape, ((data[2] << 8) | data[3]) & (RD | CD))
    return b"".join((data[0:2], head, data[HEADER_LEN : query.qend], body))


def record(rtype: int, ttl: int, rdata: bytes) -> bytes:
    """A record owned by the question name (a pointer to offset 12)."""
    return b"".join(
        (
            _QUESTION_POINTER,
            rtype.to_bytes(2, "big"),
            _CLASS_IN,
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


def _txt(text: str) -> bytes:
    raw = text.encode("utf-8")[:255]
    return bytes((len(raw),)) + raw


def block_page_rdata(v4: str | None, v6: str | None) -> tuple[bytes | None, bytes | None]:
    return (
        ipaddress.IPv4Address(v4).packed if v4 else None,
        ipaddress.IPv6Address(v6).packed if v6 else None,
    )
