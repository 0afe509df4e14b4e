"""The C name-to-text conversion (resolver/_wire.c) against the Python one it replaced."""

from __future__ import annotations

import random

import pytest

from resolver import wire
from resolver.wire import text_to_wire, wire_to_text, wire_to_text_py
from resolver.wire_query import parse_query


def test_the_extension_provides_it() -> None:
    assert wire_to_text is not wire_to_text_py


@pytest.mark.parametrize(
    "name",
    [b"\x00", text_to_wire("example.com"), text_to_wire("xn--bcher-kva.example"),
     b"\x03a.b\x03c\\d\x00", b"\x04a b\x01\x00\x02\xff\x7f\x00", b"\x01*\x03foo\x00"],
)  # fmt: skip
def test_names_read_the_same(name: bytes) -> None:
    assert wire_to_text(name) == wire_to_text_py(name)


def test_seeded_random_names_read_the_same() -> None:
    rng = random.Random(8)
    alphabet = bytes(range(256))
    for _ in range(20_000):
        labels = []
        for _ in range(rng.randint(0, 6)):
            n = rng.randint(1, 20)
            pool = alphabet if rng.random() < 0.3 else b"abcdefghijklmnopqrstuvwxyz0123456789-_.*"
            labels.append(bytes(rng.choice(pool) for _ in range(n)))
        name = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
        assert wire_to_text(name) == wire_to_text_py(name), name


def test_a_longest_name_of_escapes_fits() -> None:
    name = (b"\x3f" + b"\x00" * 63) * 3 + b"\x3d" + b"\x00" * 61 + b"\x00"
    assert len(name) == 255
    assert wire_to_text(name) == wire_to_text_py(name)


def test_malformed_bytes_are_a_value_error_not_a_crash() -> None:
    for bad in (b"", b"\x05abc", b"\x40" + b"a" * 64 + b"\x00", b"\x03abc"):
        with pytest.raises(ValueError):
            wire_to_text(bad)


def test_a_query_reads_its_name_through_it() -> None:
    query = parse_query(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03WwW\x02Ex\x00\x00\x01\x00\x01"
    )
    assert query.qname == "www.ex"
    assert wire.wire_to_text is wire_to_text
