"""Tests for resolver/reply.py: every answer we build is parsed back by dnspython (the oracle)."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import reply
from resolver.response import question_end, scan_answer
from resolver.wire import (
    AD,
    BADVERS,
    CD,
    FORMERR,
    NOTIMP,
    QR,
    RA,
    RD,
    SERVFAIL,
    WireError,
)
from resolver.wire_query import parse_query
from tests.stub_upstream import answer


def client(name: str = "WwW.Example.TEST", rdtype: str = "A", **kw: object) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]


def build(
    msg: dns.message.Message, upstream_name: str | None = None, udp_size: int = 1232
) -> dns.message.Message:
    """The answer lachan would give ``msg`` from the stub's upstream answer."""
    query = parse_query(msg.to_wire())
    up = dns.message.make_query(upstream_name or query.qname, query.qtype, use_edns=0)
    wire = answer(up).to_wire()
    scanned = scan_answer(wire, question_end(wire))
    out = reply.from_answer(query, scanned, scanned.body, udp_size)
    return dns.message.from_wire(out)


def test_answer_keeps_id_question_case_and_records() -> None:
    msg = client()
    got = build(msg)
    assert got.id == msg.id
    assert got.question[0].name.to_text() == "WwW.Example.TEST."
    assert [r.to_text() for r in got.answer[0]] == ["192.0.2.1"]
    assert got.flags & (dns.flags.QR | dns.flags.RA | dns.flags.RD) == (
        dns.flags.QR | dns.flags.RA | dns.flags.RD
    )
    assert not got.flags & dns.flags.AA  # a forwarder is not authoritative
    assert got.edns == -1  # no OPT for a client that sent none


def test_cname_chain_and_negative_answers_survive_reassembly() -> None:
    got = build(client("cname.example.test"))
    assert [rr.name.to_text() for rr in got.answer] == [
        "cname.example.test.",
        "c2.example.test.",
        "target.example.test.",
    ]
    nx = build(client("nx.example.test", use_edns=0))
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority[0].rdtype == dns.rdatatype.SOA


def test_opt_echo_version_zero_do_kept_unknown_flags_and_options_dropped() -> None:
    odd = dns.edns.GenericOption(65001, b"secret")
    msg = client(use_edns=0, ednsflags=dns.flags.DO | 0x0100, payload=4096, options=[odd])
    got = build(msg)
    assert got.edns == 0 and got.payload == 1232
    assert got.ednsflags == dns.flags.DO
    assert got.options == ()


def test_rd_and_cd_echoed_ad_only_when_asked() -> None:
    msg = client()
    msg.flags = dns.flags.CD
    assert build(msg).flags & (dns.flags.RD | dns.flags.CD) == dns.flags.CD


@pytest.mark.parametrize(
    ("query_flags", "upstream_flags", "ad"),
    [(0, AD, False), (AD, AD, True), (AD, 0, False), (RD, AD, False)],
)
def test_response_flags(query_flags: int, upstream_flags: int, ad: bool) -> None:
    flags = reply.response_flags(query_flags | RD, 3, upstream_flags | 0x0400)
    assert flags & QR and flags & RA and flags & RD
    assert bool(flags & AD) == ad
    assert flags & 0x0F == 3 and not flags & 0x0400


def test_cd_is_echoed() -> None:
    assert reply.response_flags(CD, 0) & CD


@pytest.mark.parametrize(
    ("packet", "rcode", "has_question"),
    [
        (client().to_wire()[:4] + b"\x00\x00" + client().to_wire()[6:], FORMERR, False),
        (client(use_edns=0, ednsflags=0x8000).to_wire(), FORMERR, True),
    ],
)
def test_error_answers_parse(packet: bytes, rcode: int, has_question: bool) -> None:
    query = parse_query(packet) if has_question else None
    out = reply.error(packet, rcode, query, 1232)
    got = dns.message.from_wire(out)
    assert got.rcode() == rcode and got.flags & dns.flags.QR
    assert bool(got.question) == has_question
    assert got.id == int.from_bytes(packet[:2], "big")
    if has_question:
        assert got.edns == 0 and got.ednsflags & dns.flags.DO


def test_badvers_answer_has_opt_version_zero() -> None:
    msg = client(use_edns=1)
    data = msg.to_wire()
    with pytest.raises(WireError) as caught:
        parse_query(data)
    got = dns.message.from_wire(reply.error(data, caught.value.rcode, caught.value.query, 1232))
    assert got.rcode() == BADVERS == dns.rcode.BADVERS
    assert got.edns == 0
    assert got.question[0].name == msg.question[0].name


def test_notimp_echoes_the_opcode() -> None:
    msg = client()
    msg.set_opcode(dns.opcode.NOTIFY)
    data = msg.to_wire()
    got = dns.message.from_wire(reply.error(data, NOTIMP, None, 1232), question_only=True)
    assert got.opcode() == dns.opcode.NOTIFY and got.rcode() == dns.rcode.NOTIMP


def test_servfail_with_ede() -> None:
    msg = client(use_edns=0)
    query = parse_query(msg.to_wire())
    out = reply.error(
        msg.to_wire(), SERVFAIL, query, 1232, reply.ede_option(22, "no reachable authority")
    )
    got = dns.message.from_wire(out)
    assert got.rcode() == dns.rcode.SERVFAIL
    (ede,) = got.options
    assert isinstance(ede, dns.edns.EDEOption)
    assert ede.code == 22 and ede.text == "no reachable authority"


@pytest.mark.parametrize(
    ("edns", "client_size", "limit"),
    [(-1, 0, 512), (0, 512, 512), (0, 4096, 1232), (0, 1400, 1232)],
)
def test_fit_udp_limits(edns: int, client_size: int, limit: int) -> None:
    msg = client("big.example.test", "TXT", use_edns=edns, payload=client_size or 512)
    query = parse_query(msg.to_wire())
    small = b"\x00" * limit
    assert reply.fit_udp(small, query, 1232) is small
    big = reply.from_answer(query, *_big_answer(query))
    assert len(big) > limit
    cut = reply.fit_udp(big, query, 1232)
    got = dns.message.from_wire(cut)
    assert got.flags & dns.flags.TC and not got.answer and len(cut) <= limit
    assert got.question[0].name.to_text() == "big.example.test."
    assert (got.edns == 0) == (edns == 0)


def _big_answer(query):  # type: ignore[no-untyped-def]
    up = answer(dns.message.make_query("big.example.test", "TXT")).to_wire()
    scanned = scan_answer(up, question_end(up))
    return scanned, scanned.body, 1232


def test_opt_record_layout() -> None:
    assert reply.opt_record(1232, BADVERS, True) == b"\x00\x00\x29\x04\xd0\x01\x00\x80\x00\x00\x00"


LABEL = st.text(alphabet="abcdefghijKLMNOPQRstuvwxyz0123456789-", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    labels=st.lists(LABEL, min_size=0, max_size=3),
    zone=st.sampled_from(["cname", "nx", "nodata", "big", "short", "x.ttl7", "Mixed.Case"]),
    rdtype=st.sampled_from(["A", "AAAA", "TXT", "MX", "TYPE65280"]),
    edns=st.sampled_from([-1, 0]),
    payload=st.integers(0, 65535),
    do=st.booleans(),
)
def test_every_built_answer_parses_and_matches_the_upstream(
    labels: list[str], zone: str, rdtype: str, edns: int, payload: int, do: bool
) -> None:
    """Property: for any client query, our answer parses (dnspython), keeps the client's ID and
    exact question, carries the upstream's records, and fits the client's UDP size."""
    name = ".".join([*labels, zone, "example", "test"])
    msg = client(name, rdtype, use_edns=edns, payload=payload, ednsflags=dns.flags.DO if do else 0)
    query = parse_query(msg.to_wire())
    up = answer(dns.message.make_query(query.qname, rdtype, use_edns=0))
    wire = up.to_wire(max_size=65535)
    scanned = scan_answer(wire, question_end(wire))
    built = reply.fit_udp(reply.from_answer(query, scanned, scanned.body, 1232), query, 1232)
    got = dns.message.from_wire(built)
    limit = min(max(payload, 512), 1232) if edns == 0 else 512
    assert len(built) <= limit
    assert got.id == msg.id and got.question[0].name.to_text() == msg.question[0].name.to_text()
    assert got.rcode() == up.rcode() and (got.edns == 0) == (edns == 0)
    if got.flags & dns.flags.TC:
        assert not got.answer and len(wire) > limit - 11
        return
    lower = sorted(r.to_text().lower() for r in got.answer)
    assert lower == sorted(r.to_text().lower() for r in up.answer)
    assert sorted(r.to_text() for r in got.authority) == sorted(r.to_text() for r in up.authority)
