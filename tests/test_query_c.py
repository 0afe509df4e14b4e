"""The C query reader (resolver/_query.c) against the Python reference it stands in for.

``scan_query`` reads only well-formed queries and returns None for anything the reference
rejects, so that every error comes from ``parse_query_py``. Held here over queries dnspython
builds (EDNS, options, flags, letter case, extra records, trailing bytes) and tens of
thousands of seeded corruptions of them: the same Query, or the same error, either way.
"""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.rrset
import pytest
from resolver._nametable import scan_query

from resolver.wire import Query, Unanswerable, WireError
from resolver.wire_query import parse_query, parse_query_py

FIELDS = Query.__slots__


def _fields(query: Query | None) -> tuple | None:
    return None if query is None else tuple(getattr(query, name) for name in FIELDS)


def _outcome(parse, data: bytes) -> tuple:
    try:
        return ("query", _fields(parse(data)))
    except WireError as exc:
        return ("error", exc.rcode, str(exc), _fields(exc.query))
    except Unanswerable as exc:
        return ("silent", str(exc))


def _query(name: str, rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()


def _too_long_name() -> bytes:
    """256 octets: one more than a name may have (FORMERR, the reference's error)."""
    name = b"".join(bytes([n]) + b"a" * n for n in (63, 63, 63, 62)) + b"\x00"
    return bytes.fromhex("beef01000001000000000000") + name + b"\x00\x01\x00\x01"


def corpus() -> list[bytes]:
    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    cookie = dns.edns.GenericOption(dns.edns.COOKIE, b"\x01" * 8)
    with_records = dns.message.make_query("extra.example.", "A", use_edns=0)
    with_records.additional.append(
        dns.rrset.from_text("extra.example.", 60, "IN", "A", "192.0.2.1")
    )
    return [
        _query("www.example.com"),
        _query("WwW.ExAmPle.CoM", "AAAA"),
        _query("example.com", "MX", use_edns=0),
        _query("example.com", "TXT", use_edns=0, payload=4096, want_dnssec=True),
        _query("example.com", "A", use_edns=0, payload=100),  # a buffer below 512 reads as 512
        _query("ecs.example.com", "A", use_edns=0, options=[ecs]),
        _query("both.example.com", "HTTPS", use_edns=0, options=[ecs, cookie]),
        _query("cookie.example.com", "A", use_edns=0, options=[cookie, cookie]),
        _query("cd.example.com", "A", use_edns=0, flags=dns.flags.RD | dns.flags.CD),
        _query("x" * 63 + ".example", "A"),
        _query(".".join(["a" * 63] * 3 + ["b" * 61]), "A"),  # 255 octets: the longest name
        _too_long_name(),
        _query(".", "NS"),
        _query("ixfr.example.com", "IXFR"),  # refused: the reference's error
        _query("any.example.com", "ANY", use_edns=0),
        _query("v1.example.com", "A", use_edns=1),  # BADVERS: the reference's error
        with_records.to_wire(),
        _query("trailing.example.com", use_edns=0) + b"\x00\x00junk",
    ]  # fmt: skip


def test_the_corpus_reads_the_same_and_mostly_in_c() -> None:
    read_in_c = 0
    for data in corpus():
        assert _outcome(parse_query, data) == _outcome(parse_query_py, data), data.hex()
        read_in_c += scan_query(data) is not None
    assert read_in_c == len(corpus()) - 3  # all but the long name, IXFR and EDNS version 1


def _corrupt(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        at = rng.randrange(len(out)) if out else 0
        if kind == 0 and out:  # one byte anything
            out[at] = rng.randrange(256)
        elif kind == 1 and out:  # one bit
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 2:  # cut short
            del out[rng.randrange(len(out) + 1) :]
        elif kind == 3:  # bytes inserted
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif out:  # a byte deleted
            del out[at]
    return bytes(out)


@pytest.mark.parametrize("seed", range(4))
def test_corruptions_give_the_same_query_or_the_same_error(seed: int) -> None:
    rng = random.Random(seed)
    base = corpus()
    accepted = rejected = 0
    for _ in range(10_000):
        data = _corrupt(rng.choice(base), rng)
        expected = _outcome(parse_query_py, data)
        assert _outcome(parse_query, data) == expected, data.hex()
        # None from C exactly where the reference does not return a query
        assert (scan_query(data) is None) == (expected[0] != "query"), data.hex()
        accepted += expected[0] == "query"
        rejected += expected[0] != "query"
    assert accepted > 1_000 and rejected > 1_000  # both paths were exercised


def test_a_query_that_is_not_exactly_bytes_takes_the_python_path() -> None:
    data = _query("view.example.com", use_edns=0)
    assert scan_query(bytearray(data)) is None
    assert _fields(parse_query(bytearray(data))) == _fields(parse_query_py(bytearray(data)))


def test_the_key_lowercases_ascii_letters_only() -> None:
    name = b"\x05A\xc9b\xffZ\x00"  # a non-ASCII byte is neither a letter nor changed
    data = bytes.fromhex("abcd01000001000000000000") + name + b"\x00\x01\x00\x01"
    query = parse_query(data)
    assert query.key == b"\x05a\xc9b\xffz\x00" + b"\x00\x01\x00\x01" + b"\x00"
    assert _fields(query) == _fields(parse_query_py(data))
