"""The exact bytes of every kind of reply lachan builds itself, pinned before reply building
was gathered into one module (resolver/reply.py), so the move changed no byte on the wire.

Each case is one kind of reply (error answers, cached answers with or without extended
errors, truncation, every block mode, the canary, refusals, DDR, the rate limiter's minimal
answers, our upstream query's OPT) to one query of a matrix: names short, mixed-case (0x20)
and long; A, AAAA, TXT, MX, ANY, SVCB; every RD/CD combination; no EDNS, EDNS, DO, a large
payload with a cookie option. tests/data/reply_bytes.json holds a SHA-256 per kind, name and EDNS shape, written
by the code before the move (``python -m tests.test_reply_bytes`` rewrites it: do that only
for a change meant to alter bytes, and say so in the commit).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message

from resolver import reply
from resolver.answer_steps import ede_options
from resolver.blocks import BlockAnswers, block_page_rdata
from resolver.fastpath import Shape
from resolver.policy.decision import AnswerMode, Block, Reason, Rewrite
from resolver.ratelimit import AnyMode, any_answer
from resolver.response import question_end, scan_answer
from resolver.upstream import build_upstream_query
from resolver.wire import BADVERS, FORMERR, NOERROR, NOTIMP, REFUSED, SERVFAIL, Query
from resolver.wire_query import parse_query
from tests.stub_upstream import answer

GOLDEN = Path(__file__).parent / "data" / "reply_bytes.json"
LONG = (
    ".".join(["abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxy"] * 3)
    + ".Example.Test"
)
NAMES = {"short": "WwW.Example.TEST", "long": LONG, "ddr": "_dns.resolver.arpa"}
TYPES = {"A": 1, "AAAA": 28, "TXT": 16, "MX": 15, "ANY": 255, "SVCB": 64}
EDNS = ("none", "edns", "do", "big+cookie")


def _query(name: str, qtype: int, rd: bool, cd: bool, edns: str) -> bytes:
    options = [dns.edns.GenericOption(10, b"\x01" * 8)] if edns == "big+cookie" else None
    msg = dns.message.make_query(
        name,
        qtype,
        use_edns=False if edns == "none" else 0,
        want_dnssec=edns == "do",
        payload=4096 if edns == "big+cookie" else 1232,
        options=options,
    )
    msg.id = 0xBEEF
    msg.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
    return msg.to_wire()


def _queries() -> Iterator[tuple[str, bytes]]:
    for (label, name), (tname, qtype), edns in itertools.product(
        NAMES.items(), TYPES.items(), EDNS
    ):
        if label == "ddr" and tname not in ("A", "SVCB"):
            continue
        for rd, cd in itertools.product((False, True), repeat=2):
            yield f"{label}/{tname}/{edns}/rd{rd:d}cd{cd:d}", _query(name, qtype, rd, cd, edns)


def _block(mode: AnswerMode, **kw: object) -> Block:
    fields: dict = dict(
        category="adult",
        source="src",
        rule="",
        reason=Reason.CATEGORY,
        ede=17,
        extra_text="lachan: blocked category=adult profile=p; help: 111",
        mode=mode,
        ttl=300,
        profile="p",
    )
    fields.update(kw)
    return Block(**fields)


BLOCKS = {
    mode.value: _block(mode)
    for mode in (
        AnswerMode.NXDOMAIN,
        AnswerMode.NODATA,
        AnswerMode.NULL,
        AnswerMode.BLOCKPAGE,
        AnswerMode.REFUSED,
        AnswerMode.DROP,
    )
}
BLOCKS["local"] = _block(
    AnswerMode.LOCAL, local=(("A", "192.0.2.80"), ("TXT", "blocked here")), reason=Reason.DENY
)
BLOCKS["bypass"] = _block(AnswerMode.NXDOMAIN, reason=Reason.BYPASS, ede=15, category="bypass")


def _answers() -> BlockAnswers:
    pages = {"p": block_page_rdata("192.0.2.53", "2001:db8::53")}
    answers = BlockAnswers(1232, pages)
    answers.ddr = (b"\x00\x01\x00\x00\x01\x00\x03\x02h2", b"\x00\x02\x00\x00\x01\x00\x03\x03dot")
    answers.ddr_name = b"\x04_dns\x08resolver\x04arpa\x00"
    return answers


def _upstream(query: Query, big: bool = False) -> tuple:
    qname = "big.example.test" if big else query.qname
    up = dns.message.make_query(qname, 16 if big else query.qtype, use_edns=0)
    wire = answer(up).to_wire(max_size=65535)
    scanned = scan_answer(wire, question_end(wire))
    return scanned, scanned.body


def _with_ede(query: Query, udp_size: int, rewrite: Rewrite | None, stale: bool) -> bytes:
    """What the miss path sends for a rewritten or stale answer (resolver/miss.py _serve)."""
    scanned, body = _upstream(query)
    return reply.with_ede(query, scanned, body, udp_size, ede_options(rewrite, stale))


REWRITE = Rewrite("forcesafesearch.google.com", "google", "p")
REWRITE_TEXT = Rewrite("restrict.youtube.com", "youtube", "p", extra_text="lachan: safe search")


def _prepared(answers: BlockAnswers, query: Query, block: Block) -> bytes:
    heads, body = answers.prepared(block, Shape(query.qtype, query.edns, query.do))
    data = query.data
    head = heads[(data[2] & 1) | ((data[3] >> 3) & 2)]
    return data[:2] + head + data[12 : query.qend] + body


def _notimp(data: bytes) -> bytes:
    status = data[:2] + bytes((data[2] | 0x10,)) + data[3:]  # opcode 2 (STATUS)
    return reply.error(status, NOTIMP, None, 1232)


def kinds() -> dict[str, Callable[[bytes, Query, BlockAnswers], bytes | None]]:
    """Each kind of reply, as a function of (query bytes, parsed query, block answers)."""
    k: dict[str, Callable[[bytes, Query, BlockAnswers], bytes | None]] = {
        "formerr": lambda d, q, b: reply.error(d, FORMERR, q, 1232),
        "servfail": lambda d, q, b: reply.error(d, SERVFAIL, q, 1232),
        "servfail4096": lambda d, q, b: reply.error(d, SERVFAIL, q, 4096),
        "refused-error": lambda d, q, b: reply.error(d, REFUSED, q, 1232),
        "servfail-ede22": lambda d, q, b: reply.error(
            d, SERVFAIL, q, 1232, reply.ede_option(22, "no reachable authority")
        ),
        "badvers": lambda d, q, b: reply.error(d, BADVERS, q, 1232),
        "formerr-noquestion": lambda d, q, b: reply.error(d, FORMERR, None, 1232),
        "notimp": lambda d, q, b: _notimp(d),
        "cached": lambda d, q, b: reply.from_answer(q, *_upstream(q), 1232),
        "cached-fit": lambda d, q, b: reply.fit_udp(
            reply.from_answer(q, *_upstream(q), 1232), q, 1232
        ),
        "big-fit": lambda d, q, b: reply.fit_udp(
            reply.from_answer(q, *_upstream(q, True), 1232), q, 1232
        ),
        "big-truncated": lambda d, q, b: reply.truncated(
            reply.from_answer(q, *_upstream(q, True), 1232), q, 1232
        ),
        "rewritten": lambda d, q, b: _with_ede(q, 1232, REWRITE, False),
        "rewritten-text-stale": lambda d, q, b: _with_ede(q, 1232, REWRITE_TEXT, True),
        "stale": lambda d, q, b: _with_ede(q, 1232, None, True),
        "canary": lambda d, q, b: b.canary(q, ("site=s1", "profile=p", "lists=2026-12-06")),
        "refused-acl": lambda d, q, b: b.refused(q),
        "refused-device": lambda d, q, b: b.refused(q, "lachan: unknown device ID 'ab': nope"),
        "rl-truncated": lambda d, q, b: reply.minimal(q, 1232, NOERROR, tc=True),
        "rl-any-hinfo": lambda d, q, b: any_answer(q, AnyMode.HINFO, 1232),
        "rl-any-refuse": lambda d, q, b: any_answer(q, AnyMode.REFUSE, 1232),
        "upstream-query": lambda d, q, b: build_upstream_query(
            q.key, (d[2] << 8) | d[3], q.do, 1232
        ),
    }
    for name, block in BLOCKS.items():
        k[f"block-{name}"] = lambda d, q, b, block=block: b.answer(q, block)
        if block.mode is not AnswerMode.DROP and block.reason is not Reason.BYPASS:
            k[f"prepared-{name}"] = lambda d, q, b, block=block: _prepared(b, q, block)
    return k


def replies() -> dict[str, str]:
    """SHA-256 of the replies of one kind to the queries of one name and EDNS shape (all
    types and RD/CD combinations, in order; a kind that answers nothing counts as "none")."""
    digests: dict[str, hashlib._Hash] = {}
    for label, data in _queries():
        name, qtype, edns, rdcd = label.split("/")
        query = parse_query(data)
        answers = _answers()
        for kind, build in kinds().items():
            first = build(data, query, answers)
            again = build(data, query, answers)  # the second from prepared bodies
            assert first == again, (label, kind)
            digest = digests.setdefault(f"{kind}/{name}/{edns}", hashlib.sha256())
            digest.update(f"{qtype}/{rdcd}:".encode() + (b"none" if first is None else first))
    return {key: digest.hexdigest()[:32] for key, digest in digests.items()}


def test_every_reply_is_byte_for_byte_what_it_was() -> None:
    want = json.loads(GOLDEN.read_text())
    got = replies()
    assert got.keys() == want.keys()
    differ = sorted(key for key in want if got[key] != want[key])
    assert not differ, f"{len(differ)} replies changed, e.g. {differ[:5]}"


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(replies(), indent=0, sort_keys=True) + "\n")
