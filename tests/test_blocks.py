"""Synthesised block answers, read back by dnspython: every header bit, family and EDNS shape."""

from __future__ import annotations

import itertools

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from resolver.blocks import BlockAnswers
from resolver.policy.decision import AnswerMode, Block, Reason
from resolver.wire_query import parse_query

A, AAAA, MX = 1, 28, 15


def _block(mode: AnswerMode = AnswerMode.NXDOMAIN, ttl: int = 300) -> Block:
    return Block("adult", "src", "", Reason.CATEGORY, 17, "profile=p", mode, ttl, "p")


def _query(name: str, qtype: int, rd: bool, cd: bool, edns: bool, do: bool) -> bytes:
    msg = dns.message.make_query(name, qtype, use_edns=0 if edns else False, want_dnssec=do)
    msg.id = 0x4242
    msg.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
    return msg.to_wire()


# rd, cd, edns, do; DO lives in the OPT record, so there is no DO query without EDNS
SHAPES = [s for s in itertools.product((True, False), repeat=4) if s[2] or not s[3]]


@pytest.mark.parametrize(("rd", "cd", "edns", "do"), SHAPES)
@pytest.mark.parametrize("qtype", [A, AAAA, MX])
def test_nxdomain_echoes_header_bits_and_question(rd, cd, edns, do, qtype) -> None:
    answers, block = BlockAnswers(1232, {}), _block()
    wire = _query("WwW.Porn.Example", qtype, rd, cd, edns, do)
    for _ in range(2):  # the second answer comes from the prepared header and body
        reply = dns.message.from_wire(answers.answer(parse_query(wire), block))
        assert reply.id == 0x4242 and reply.rcode() == dns.rcode.NXDOMAIN
        assert bool(reply.flags & dns.flags.RD) is rd and bool(reply.flags & dns.flags.CD) is cd
        assert reply.flags & dns.flags.QR and reply.flags & dns.flags.RA
        assert str(reply.question[0].name) == "WwW.Porn.Example."  # case kept for 0x20
        assert reply.question[0].rdtype == qtype
        (soa,) = reply.authority
        assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 300
        assert (reply.edns >= 0) is edns
        if edns:
            assert bool(reply.ednsflags & dns.flags.DO) is do
            assert any(o.otype == 15 for o in reply.options)  # EDE 17 Filtered


def test_null_mode_answers_per_family_and_blocks_do_not_share_answers() -> None:
    answers = BlockAnswers(1232, {})
    null, nxdomain = _block(AnswerMode.NULL, ttl=60), _block()
    for qtype, address in ((A, "0.0.0.0"), (AAAA, "::")):
        query = parse_query(_query("x.test", qtype, True, False, True, False))
        reply = dns.message.from_wire(answers.answer(query, null))
        assert reply.rcode() == dns.rcode.NOERROR
        assert [r.address for r in reply.answer[0]] == [address] and reply.answer[0].ttl == 60
        assert dns.message.from_wire(answers.answer(query, nxdomain)).rcode() == dns.rcode.NXDOMAIN
    mx = parse_query(_query("x.test", MX, True, False, False, False))
    reply = dns.message.from_wire(answers.answer(mx, null))
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer and reply.authority  # NODATA


def test_drop_mode_answers_nothing() -> None:
    query = parse_query(_query("x.test", A, True, False, False, False))
    assert BlockAnswers(1232, {}).answer(query, _block(AnswerMode.DROP)) is None


def test_prepared_answers_stay_bounded() -> None:
    answers = BlockAnswers(1232, {})
    query = parse_query(_query("x.test", A, True, False, False, False))
    blocks = [_block(ttl=t) for t in range(5000)]  # e.g. keyword blocks, one per query
    for block in blocks:
        assert dns.message.from_wire(answers.answer(query, block)).authority[0].ttl == block.ttl
    assert len(answers._by_block) <= 4096
