"""Table tests for resolver/wire_query.py: every malformed query case of issue 2, EDNS
handling, opcodes and meta-types; dnspython builds the well-formed inputs. (The C fast path
against this reference: test_query_c.py.)"""

from __future__ import annotations

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import pytest
from test_wire import A_IN, HEADER, NAME_256, WWW

from resolver import reply, wire
from resolver.wire import BADVERS, FORMERR, NOTIMP, REFUSED, Unanswerable, WireError
from resolver.wire_query import parse_query


def query(name: str = "www.example.test", rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()  # type: ignore[arg-type]


def opt(version: int = 0, flags: int = 0, options: bytes = b"", size: int = 1232) -> bytes:
    ttl = bytes((0, version)) + flags.to_bytes(2, "big")
    return (
        b"\x00\x00\x29" + size.to_bytes(2, "big") + ttl + len(options).to_bytes(2, "big") + options
    )


def with_additional(*records: bytes, header: bytes = HEADER) -> bytes:
    return header[:10] + len(records).to_bytes(2, "big") + WWW + A_IN + b"".join(records)


# -- well-formed queries ------------------------------------------------------------------
def test_plain_query_fields() -> None:
    q = parse_query(HEADER + WWW + A_IN)
    assert (q.qtype, q.qclass, q.qname) == (1, 1, "www.example.test")
    assert q.key == WWW + A_IN + b"\x00"
    assert (q.edns, q.udp_size, q.do) == (False, 512, False)
    assert q.qend == len(HEADER + WWW + A_IN)


def test_key_is_lowercase_but_question_keeps_case() -> None:
    data = HEADER + b"\x03WwW\x07ExAmPlE\x04TEST\x00" + A_IN
    q = parse_query(data)
    assert q.key == WWW + A_IN + b"\x00"
    assert q.qname_wire == b"\x03WwW\x07ExAmPlE\x04TEST\x00"


@pytest.mark.parametrize(
    ("flags", "edns_flags", "key_flag"),
    [(0, 0, 0), (dns.flags.CD, 0, wire.KEY_CD), (0, dns.flags.DO, wire.KEY_DO)],
)
def test_key_flag_byte_separates_do_and_cd(flags: int, edns_flags: int, key_flag: int) -> None:
    msg = dns.message.make_query("www.example.test", "A", use_edns=0, ednsflags=edns_flags)
    msg.flags |= flags
    assert parse_query(msg.to_wire()).key[-1] == key_flag


def test_edns_fields_and_known_options() -> None:
    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    cookie = dns.edns.GenericOption(dns.edns.COOKIE, b"\x01" * 8)
    data = query(use_edns=0, payload=4096, ednsflags=dns.flags.DO, options=[ecs, cookie])
    q = parse_query(data)
    assert (q.edns, q.udp_size, q.do) == (True, 4096, True)
    assert q.ecs == ecs.to_wire() and q.cookie == b"\x01" * 8


def test_tiny_edns_buffer_reads_as_512() -> None:
    assert parse_query(with_additional(opt(size=100))).udp_size == 512


def test_unknown_option_and_flags_are_ignored() -> None:
    data = with_additional(opt(flags=0x7FFF, options=b"\xfd\xe9\x00\x03abc"))
    q = parse_query(data)
    assert q.edns and not q.do and q.ecs is None and q.cookie is None


def test_other_additional_records_are_skipped() -> None:
    tsig_like = b"\x00\x00\x10\x00\x01\x00\x00\x00\x00\x00\x02\x01x"  # TXT in additional
    q = parse_query(with_additional(tsig_like, opt(flags=0x8000)))
    assert q.edns and q.do


# -- malformed queries: the table of issue 2 ----------------------------------------------
def _set(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


GOOD = HEADER + WWW + A_IN


LONG_LABELS = b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3d" + b"b" * 61


MALFORMED = [
    # (id, packet, expected rcode or None for "drop")
    ("empty", b"", None),
    ("11 bytes", GOOD[:11], None),
    ("qr=1", _set(GOOD, 2, b"\x81"), None),
    ("qr=1 and garbage", b"\xff" * 40, None),
    ("opcode iquery", _set(GOOD, 2, b"\x09"), NOTIMP),
    ("opcode status", _set(GOOD, 2, b"\x11"), NOTIMP),
    ("opcode notify", _set(GOOD, 2, b"\x21"), NOTIMP),
    ("opcode update", _set(GOOD, 2, b"\x29"), NOTIMP),
    ("opcode 15", _set(GOOD, 2, b"\x79"), NOTIMP),
    ("qdcount 0", _set(GOOD, 4, b"\x00\x00"), FORMERR),
    ("qdcount 2", _set(GOOD, 4, b"\x00\x02"), FORMERR),
    ("qdcount 256", _set(GOOD, 4, b"\x01\x01"), FORMERR),
    ("ancount 1", _set(GOOD, 6, b"\x00\x01"), FORMERR),
    ("nscount 1", _set(GOOD, 8, b"\x00\x01"), FORMERR),
    ("no question", HEADER, FORMERR),
    ("question name cut", HEADER + WWW[:6], FORMERR),
    ("question without qtype", HEADER + WWW, FORMERR),
    ("question with half qclass", HEADER + WWW + A_IN[:3], FORMERR),
    ("label length 64", HEADER + b"\x40" + b"a" * 64 + b"\x00" + A_IN, FORMERR),
    ("label type 0x80", HEADER + b"\x80abc\x00" + A_IN, FORMERR),
    ("pointer loop to itself", HEADER + b"\xc0\x0c" + A_IN, FORMERR),
    ("pointer into header", HEADER + b"\xc0\x02" + A_IN, FORMERR),
    ("forward pointer", HEADER + b"\x01a\xc0\x20" + A_IN + b"\x00" * 20, FORMERR),
    ("name of 256 octets", HEADER + NAME_256 + A_IN, FORMERR),
    ("name of 257 octets", HEADER + LONG_LABELS + b"\x01c\x00" + A_IN, FORMERR),
    ("additional record cut", with_additional(opt())[:-3], FORMERR),
    ("arcount 2, one record", with_additional(opt(), opt())[: -len(opt())], FORMERR),
    ("two OPT records", with_additional(opt(), opt()), FORMERR),
    ("OPT owner not root", with_additional(b"\x01x" + opt()[1:]), FORMERR),
    ("EDNS option cut", with_additional(opt(options=b"\x00\x0a\x00")), FORMERR),
    ("EDNS option overruns", with_additional(opt(options=b"\x00\x0a\x00\x09abc")), FORMERR),
]


@pytest.mark.parametrize(
    ("packet", "rcode"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed(packet: bytes, rcode: int | None) -> None:
    if rcode is None:
        with pytest.raises(Unanswerable):
            parse_query(packet)
        return
    with pytest.raises(WireError) as caught:
        parse_query(packet)
    assert caught.value.rcode == rcode


def test_name_of_exactly_255_octets_is_accepted() -> None:
    name = LONG_LABELS + b"\x00"
    assert len(name) == 255
    assert parse_query(HEADER + name + A_IN).qtype == 1


@pytest.mark.parametrize("version", [1, 2, 255])
def test_edns_version_above_zero_is_badvers_with_the_query(version: int) -> None:
    with pytest.raises(WireError) as caught:
        parse_query(with_additional(opt(version=version, flags=0x8000)))
    assert caught.value.rcode == BADVERS
    assert caught.value.query is not None and caught.value.query.do


def test_formerr_after_the_question_keeps_the_query_for_echo() -> None:
    with pytest.raises(WireError) as caught:
        parse_query(with_additional(opt(), opt()))
    assert caught.value.query is not None and caught.value.query.qend == len(GOOD)


def test_dnspython_queries_of_every_opcode_parse_or_notimp() -> None:
    for opcode in range(16):
        msg = dns.message.make_query("www.example.test", "A")
        msg.set_opcode(opcode)
        data = msg.to_wire()
        if opcode == dns.opcode.QUERY:
            assert parse_query(data).qtype == 1
        else:
            with pytest.raises(WireError) as caught:
                parse_query(data)
            assert caught.value.rcode == NOTIMP


@pytest.mark.parametrize(
    ("qtype", "rcode"),
    [(41, FORMERR), (250, FORMERR), (251, REFUSED), (252, REFUSED), (253, FORMERR), (254, FORMERR)],
)
def test_meta_qtypes_are_not_forwarded(qtype: int, rcode: int) -> None:
    with pytest.raises(WireError) as caught:
        parse_query(
            with_additional(opt(flags=0x8000))[:30]
            + qtype.to_bytes(2, "big")
            + b"\x00\x01"
            + opt(flags=0x8000)
        )
    assert caught.value.rcode == rcode
    assert caught.value.query is not None and caught.value.query.edns  # answered with an OPT


@pytest.mark.parametrize("qtype", [0, 1, 28, 65, 249, 255, 256, 65280, 65535])
def test_other_qtypes_parse(qtype: int) -> None:
    assert parse_query(HEADER + WWW + qtype.to_bytes(2, "big") + b"\x00\x01").qtype == qtype


def test_notimp_keeps_a_well_formed_question_for_echo() -> None:
    with pytest.raises(WireError) as caught:
        parse_query(_set(GOOD, 2, b"\x21"))
    assert caught.value.rcode == NOTIMP
    assert caught.value.query is not None and caught.value.query.qend == len(GOOD)
    for broken in (_set(HEADER, 2, b"\x21"), _set(_set(GOOD, 2, b"\x21"), 5, b"\x02")):
        with pytest.raises(WireError) as caught:
            parse_query(broken)
        assert caught.value.rcode == NOTIMP and caught.value.query is None


@pytest.mark.parametrize(("rdtype", "echoed"), [("A", False), ("SOA", True)])
def test_an_update_is_notimp_and_echoes_its_zone_only_when_it_names_one(
    rdtype: str, echoed: bool
) -> None:
    # An UPDATE's first section is its zone, of type SOA (RFC 2136 2.3); echoing an A
    # "zone" made a reply dnspython (and any UPDATE client) rejects as malformed.
    update = _set(query("example.test", rdtype), 2, b"\x29")
    with pytest.raises(WireError) as caught:
        parse_query(update)
    assert caught.value.rcode == NOTIMP
    answer = dns.message.from_wire(reply.error(update, NOTIMP, caught.value.query, 1232))
    assert answer.opcode() == dns.opcode.UPDATE and answer.rcode() == NOTIMP
    assert bool(answer.sections[0]) is echoed
