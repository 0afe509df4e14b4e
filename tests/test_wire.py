"""Table tests for resolver/wire.py: every malformed query case of issue 2, EDNS handling,
names and compression; dnspython builds the well-formed inputs."""

from __future__ import annotations

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolver import reply, wire
from resolver.wire import (
    BADVERS,
    FORMERR,
    NOTIMP,
    REFUSED,
    Unanswerable,
    WireError,
    check_name,
    read_name,
    skip_name,
    text_to_wire,
    wire_to_text,
)
from resolver.wire_query import parse_query

HEADER = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # ID abcd, RD, qdcount 1
WWW = b"\x03www\x07example\x04test\x00"
A_IN = b"\x00\x01\x00\x01"


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
NAME_256 = b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3e" + b"b" * 62 + b"\x00"
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


# -- names --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", b"\x00"),
        (".", b"\x00"),
        ("www.example.test.", WWW),
        ("www.example.test", WWW),
        ("bücher.example", b"\x0dxn--bcher-kva\x07example\x00"),
    ],
)
def test_text_to_wire(text: str, expected: bytes) -> None:
    assert text_to_wire(text) == expected


@pytest.mark.parametrize("bad", ["a..b", "x" * 64 + ".test", ".".join(["a" * 60] * 5)])
def test_text_to_wire_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        text_to_wire(bad)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"\x00", ""),
        (WWW, "www.example.test"),
        (b"\x03a.b\x01\\\x02\x00\xff\x00", "a\\046b.\\092.\\000\\255"),
    ],
)
def test_wire_to_text_escapes(raw: bytes, text: str) -> None:
    assert wire_to_text(raw) == text


def test_read_name_follows_backward_pointers() -> None:
    msg = HEADER + WWW + A_IN + b"\x04mail\xc0\x10" + b"\xc0\x22"
    name, end = read_name(msg, len(HEADER + WWW + A_IN))
    assert name == b"\x04mail\x07example\x04test\x00"
    assert end == len(msg) - 2
    assert read_name(msg, len(msg) - 2) == (b"\x04mail\x07example\x04test\x00", len(msg))


@pytest.mark.parametrize(
    ("msg", "pos"),
    [
        (HEADER + b"\xc0\x0c", 12),  # points at itself
        (HEADER + b"\x01a\xc0\x0c", 12),  # back to its own start: a loop
        (HEADER + b"\xc0\x0e\x01a\x00", 12),  # forward
        (HEADER + b"\x01a\xc0\x10\xc0\x0c", 16),  # a two-pointer loop
        (HEADER + b"\x01a", 12),  # cut
        (HEADER + b"\xc0", 12),  # cut pointer
        (HEADER + b"\x41", 12),  # reserved label type
        (HEADER + b"\x3fx", 12),  # label overruns
        (HEADER + NAME_256, 12),  # 256 octets
    ],
)
def test_read_name_rejects(msg: bytes, pos: int) -> None:
    with pytest.raises(WireError):
        read_name(msg, pos)


def test_a_pointer_must_lead_to_a_name_that_ends_before_it() -> None:
    # Found by the mutating-upstream fuzzer: an answer owner pointing into the question's
    # type, so the "name" there is a 16-octet label made of the answer's own bytes and runs
    # through the pointer. dnspython refuses such a message; so must we, before passing it on.
    msg = bytes.fromhex(
        "5c5d81800001000100000000036200670765" "78616d706c6504746573740000100001"
        "c01f00100001000151800004" "03620067"
    )  # fmt: skip
    for check in (check_name, lambda m, p: read_name(m, p)[1]):
        with pytest.raises(WireError):
            check(msg, 34)
    with pytest.raises(dns.exception.FormError):
        dns.message.from_wire(msg)
    fine = HEADER + WWW + A_IN + b"\xc0\x0c"  # the usual pointer to the question name
    assert check_name(fine, len(fine) - 2) == read_name(fine, len(fine) - 2)[1] == len(fine)


def test_read_name_rejects_a_long_name_built_from_pointers() -> None:
    # 4 x 63-octet labels reached through a pointer: 257 octets with the root.
    base = HEADER + b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x00"
    msg = base + b"\x3fb" + b"b" * 62 + b"\xc0\x0c"
    with pytest.raises(WireError):
        read_name(msg, len(base))


def test_skip_name_stops_after_a_pointer() -> None:
    assert skip_name(b"\x01a\xc0\x00rest", 0, 9) == 4
    with pytest.raises(WireError):
        skip_name(b"\x01a", 0, 2)


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


def test_check_name_agrees_with_read_name_and_refuses_header_pointers() -> None:
    msg = HEADER + WWW + A_IN + b"\x04mail\xc0\x10" + b"\xc0\x22"
    for pos in (12, 34, len(msg) - 2):
        assert check_name(msg, pos) == read_name(msg, pos)[1]
    with pytest.raises(WireError):
        check_name(HEADER + b"\x01a\xc0\x02", 12)  # into the header: read_name allows it
    for bad in (HEADER + NAME_256, HEADER + b"\xc0\x0c", HEADER + b"\x01a\xc0\x10\x00"):
        with pytest.raises(WireError):
            check_name(bad, 12)


def _escaped_label(label: bytes) -> str:
    # The presentation rule, byte by byte: printable ASCII except '.' and '\' as is, else \DDD.
    return "".join(
        chr(b) if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C) else f"\\{b:03d}" for b in label
    )


@given(st.lists(st.binary(min_size=1, max_size=63), min_size=0, max_size=8))
def test_wire_to_text_matches_the_byte_by_byte_rule(labels: list[bytes]) -> None:
    raw = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    assert wire_to_text(raw) == ".".join(_escaped_label(label) for label in labels)


@given(st.lists(st.text("abcxyz019-_*", min_size=1, max_size=20), min_size=1, max_size=6))
def test_wire_to_text_of_plain_names_is_the_dotted_name(labels: list[str]) -> None:
    raw = b"".join(bytes((len(label),)) + label.encode() for label in labels) + b"\x00"
    assert wire_to_text(raw) == ".".join(labels)


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
