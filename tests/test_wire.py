"""Table tests for resolver/wire.py: names (text and wire, escapes, compression, pointers);
dnspython builds the well-formed inputs. Reading a whole query: test_wire_query.py."""

from __future__ import annotations

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolver.wire import (
    WireError,
    check_name,
    read_name,
    skip_name,
    text_to_wire,
    wire_to_text,
)

HEADER = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # ID abcd, RD, qdcount 1
WWW = b"\x03www\x07example\x04test\x00"
A_IN = b"\x00\x01\x00\x01"


NAME_256 = b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3e" + b"b" * 62 + b"\x00"


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
