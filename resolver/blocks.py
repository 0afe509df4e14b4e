"""Block answers, kept built: which records each block mode answers with, one body per shape.

The bytes come from resolver/reply.py. Every record's owner there is a compression pointer to
the question, so the bytes after the question do not depend on the name asked: they are built
once per shape (mode, type family, TTL, EDE text, EDNS/DO) and reused for every blocked name.
"""

from __future__ import annotations

import ipaddress

from . import reply
from .fastpath import Shape
from .localdata import records_for
from .policy.decision import AnswerMode, Block, Reason
from .reply import record, shape, soa_record
from .wire import HEADER_LEN, NOERROR, NXDOMAIN, REFUSED, TYPE_A, TYPE_AAAA, TYPE_SVCB, Query


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
        if self.ddr and block.reason is Reason.BYPASS and query.qtype == TYPE_SVCB:
            if query.qname_wire.lower() == self.ddr_name:
                return reply.designated(query, self.udp_size, self.ddr)
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

    def prepared(self, block: Block, shape: Shape) -> tuple[tuple[bytes, ...], bytes]:
        """(headers by RD/CD, body) of the answer to a query of ``shape`` blocked by ``block``:
        the answer is ID + header + the query's question + body (resolver/fastpath.py)."""
        return self._shaped(shape, block)

    def _shaped(self, query: Query | Shape, block: Block) -> tuple[tuple[bytes, ...], bytes]:
        family = query.qtype if query.qtype in (TYPE_A, TYPE_AAAA) else 0
        if block.mode is AnswerMode.LOCAL:
            family = query.qtype  # TXT local data answers TXT: every type is its own shape
        key = (
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
        built = self._bodies.get(key)
        if built is None:
            if len(self._bodies) > 4096:
                self._bodies.clear()
            counts, body = self._build(query, block, family)
            built = self._bodies[key] = (reply.heads(counts), body)
        return built

    def _build(self, query: Query | Shape, block: Block, family: int) -> tuple[int, bytes]:
        mode = block.mode
        opt = reply.opt_for(query, self.udp_size, block.ede, block.extra_text)
        if mode is AnswerMode.LOCAL:
            found = records_for(block.local, family)
            if found:
                body = b"".join(record(family, block.ttl, rdata) for rdata in found)
                return shape(NOERROR, len(found), 0, opt), body + opt
            return shape(NOERROR, 0, 1, opt), soa_record(block.ttl) + opt
        if mode is AnswerMode.REFUSED:
            return shape(REFUSED, 0, 0, opt), opt
        if mode is AnswerMode.NXDOMAIN:
            return shape(NXDOMAIN, 0, 1, opt), soa_record(block.ttl) + opt
        address = self._address(mode, family, block.profile)
        if address is None:  # NODATA, or NULL/BLOCKPAGE for a type without an address
            return shape(NOERROR, 0, 1, opt), soa_record(block.ttl) + opt
        rtype = TYPE_A if len(address) == 4 else TYPE_AAAA
        return shape(NOERROR, 1, 0, opt), record(rtype, block.ttl, address) + opt

    def _address(self, mode: AnswerMode, family: int, profile: str) -> bytes | None:
        if family == 0 or mode is AnswerMode.NODATA:
            return None
        if mode is AnswerMode.NULL:
            return bytes(4) if family == TYPE_A else bytes(16)
        if mode is AnswerMode.BLOCKPAGE:
            v4, v6 = self._block_pages.get(profile, (None, None))
            return v4 if family == TYPE_A else v6
        return None

    def canary(self, query: Query, texts: tuple[str, ...]) -> bytes:
        """The status name's answer (resolver/reply.py canary)."""
        return reply.canary(query, self.udp_size, texts)

    def refused(self, query: Query, text: str = reply.ACL_REFUSED_TEXT) -> bytes:
        """REFUSED with EDE 18 and ``text`` (resolver/reply.py refused)."""
        return reply.refused(query, self.udp_size, text)


def block_page_rdata(v4: str | None, v6: str | None) -> tuple[bytes | None, bytes | None]:
    return (
        ipaddress.IPv4Address(v4).packed if v4 else None,
        ipaddress.IPv6Address(v6).packed if v6 else None,
    )
