"""The C name table (resolver/_nametable.c) against a plain-Python model of the same rules.

The model: a dict from listed name to record; a record's (self, sub) template ids; a lookup
walks the name's suffixes most specific first and takes the first non-empty slot, self for
the whole name, sub for a parent. classify() must agree with it and with parse_query() on
every packet it accepts, and must turn down, without crashing, anything else.
"""

from __future__ import annotations

import array
import random

import dns.edns
import dns.message
import dns.name
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from resolver._nametable import QEND_BITS, START_BITS, Table, build_table

from resolver.wire import WireError
from resolver.wire_query import parse_query

NOT_LISTED, NOT_SIMPLE = -1, -2
LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
NAME = st.lists(LABEL, min_size=1, max_size=5).map(".".join)


def make_table(records: dict[str, int], pairs: list[int], value_size: int = 2) -> Table:
    names = list(records)
    blob, cap, seed = build_table(names, [records[n] for n in names], value_size)
    return Table(blob, array.array("i", pairs).tobytes(), cap, value_size, seed)


def model_match(records: dict[str, int], pairs: list[int], name: str) -> int:
    labels = name.split(".")
    for i in range(len(labels)):
        record = records.get(".".join(labels[i:]))
        if record is None:
            continue
        mid = pairs[2 * record + (0 if i == 0 else 1)]
        if mid >= 0:
            return mid << START_BITS | len(".".join(labels[:i])) + (1 if i else 0)
    return -1


@st.composite
def listed_world(draw):  # type: ignore[no-untyped-def]
    names = draw(st.lists(NAME, min_size=1, max_size=40, unique=True))
    npairs = draw(st.integers(1, 6))
    pairs = draw(st.lists(st.integers(-1, 20), min_size=2 * npairs, max_size=2 * npairs))
    records = {n: draw(st.integers(0, npairs - 1)) for n in names}
    return records, pairs


@settings(max_examples=300, deadline=None)
@given(listed_world(), st.lists(NAME, max_size=10), st.sampled_from([2, 4]))
def test_match_and_get_agree_with_the_model(world, others, value_size) -> None:  # type: ignore[no-untyped-def]
    records, pairs = world
    table = make_table(records, pairs, value_size)
    queries = list(records) + others
    queries += [f"www.{n}" for n in records] + [f"a.b.{n}" for n in others]
    for name in queries:
        assert table.match(name) == model_match(records, pairs, name), name
        assert table.get(name) == records.get(name, -1), name


def test_match_reports_the_winning_suffix() -> None:
    table = make_table({"example.com": 0, "com": 1}, [5, -1, -1, 7])
    assert table.match("example.com") == 5 << START_BITS  # self slot of the name itself
    found = table.match("www.example.com")  # example.com has no sub slot: com's applies
    assert found >> START_BITS == 7 and "www.example.com"[found & 511 :] == "com"
    assert table.match("example.org") == -1 and table.match("") == -1
    assert table.match("x" * 5000) == -1  # longer than any name: nothing, no error


def test_build_refuses_duplicates_and_bad_values() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        build_table(["a.test", "a.test"], [0, 0], 2)
    with pytest.raises(ValueError, match="range"):
        build_table(["a.test"], [70_000], 2)
    with pytest.raises(TypeError):
        build_table([b"a.test"], [0], 2)  # type: ignore[list-item]
    blob, cap, seed = build_table(["a.test"], [0], 2)
    with pytest.raises(ValueError, match="sizes"):
        Table(blob[:-1], b"", cap, 2, seed)  # a truncated blob is refused, not read past


def test_an_empty_table_matches_nothing() -> None:
    table = make_table({}, [])
    assert table.match("example.com") == -1 and table.get("example.com") == -1


def test_200k_names_build_and_stay_exact() -> None:
    rnd = random.Random(5)
    names = list(dict.fromkeys(f"n{rnd.getrandbits(40):x}.test" for _ in range(200_000)))
    table = make_table({n: i % 100 for i, n in enumerate(names)}, list(range(200)))
    assert all(table.get(n) == i % 100 for i, n in enumerate(names[:5000]))
    assert all(table.get(f"x{n}") == -1 for n in names[:5000])


# -- classify -------------------------------------------------------------------------------
WORLD = {"bad.test": 0, "ads.example.com": 1, "allowed.test": 2, "static.test": 0}
PAIRS = [3, 4, 6, -1, -1, -1]  # record 0: self 3, sub 4; record 1: self 6; record 2: none
INDEX = make_table(WORLD, PAIRS)


def static_table(exact: list[str], below: list[str]) -> Table:
    bits: dict[str, int] = {}
    for name in exact:
        bits[name] = bits.get(name, 0) | 1
    for name in below:
        bits[name] = bits.get(name, 0) | 2
    return make_table(bits, [])


def unpack(code: int) -> tuple[int, int, bool, bool, int]:
    key, qend = code >> QEND_BITS, code & ((1 << QEND_BITS) - 1)
    return key >> 18, (key >> 2) & 0xFFFF, bool(key & 2), bool(key & 1), qend


@pytest.mark.parametrize(
    ("name", "qtype", "edns", "do", "template"),
    [
        ("bad.test", "A", False, False, 3),
        ("BaD.TeSt", "AAAA", True, False, 3),  # case does not matter
        ("www.bad.test", "MX", True, True, 4),
        ("ads.example.com", "HTTPS", False, False, 6),
        ("x.ads.example.com", "A", False, False, None),  # no sub slot, no parent rule
        ("allowed.test", "A", False, False, None),
        ("example.org", "A", True, False, None),
    ],
)
def test_classify_plain_queries(name, qtype, edns, do, template) -> None:  # type: ignore[no-untyped-def]
    query = dns.message.make_query(name, qtype, use_edns=0 if edns else False, want_dnssec=do)
    wire = query.to_wire()
    code = INDEX.classify(wire, None)
    if template is None:
        assert code == NOT_LISTED
        return
    parsed = parse_query(wire)
    assert unpack(code) == (template, parsed.qtype, edns, do, parsed.qend)


@pytest.mark.parametrize(
    "build",
    [
        lambda: dns.message.make_query("bad.test", "A", use_edns=0, payload=1232,
                                       options=[dns.edns.GenericOption(10, b"12345678")]),
        lambda: dns.message.make_query("bad.test", "ANY"),
        lambda: dns.message.make_query("bad.test", "AXFR"),
        lambda: dns.message.make_query("bad.test", "A", rdclass="CH"),
        lambda: dns.message.make_query(".", "A"),
    ],
)  # fmt: skip
def test_classify_leaves_unusual_queries_to_the_general_path(build) -> None:  # type: ignore[no-untyped-def]
    assert INDEX.classify(build().to_wire(), None) == NOT_SIMPLE


def test_classify_defers_to_static_rules() -> None:
    wire = dns.message.make_query("www.bad.test", "A").to_wire()
    assert INDEX.classify(wire, static_table([], [])) >= 0
    assert INDEX.classify(wire, static_table(["www.bad.test"], [])) == NOT_SIMPLE
    assert INDEX.classify(wire, static_table([], ["bad.test"])) == NOT_SIMPLE
    assert INDEX.classify(wire, static_table([], ["test"])) == NOT_SIMPLE
    # a rule for the names *below* www.bad.test, or exactly for its parent, does not apply
    assert INDEX.classify(wire, static_table(["bad.test"], ["www.bad.test"])) >= 0
    with pytest.raises(TypeError):
        INDEX.classify(wire, "not a table")


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=80), st.sampled_from(list(WORLD)))
def test_classify_never_disagrees_with_parse_query(noise: bytes, name: str) -> None:
    base = dns.message.make_query(name, "A", use_edns=0).to_wire()
    for wire in (noise, base[:12] + noise, base[: len(noise) % len(base)], base + noise[:3]):
        code = INDEX.classify(wire, None)
        if code == NOT_SIMPLE:
            continue
        parsed = parse_query(wire)  # accepted by classify: the general parser must accept it
        qname = dns.name.from_wire(wire, 12)[0].to_text(omit_final_dot=True).lower()
        expected = model_match(WORLD, PAIRS, qname)
        if code == NOT_LISTED:
            assert expected == -1
        else:
            assert unpack(code)[0] == expected >> START_BITS
            assert unpack(code)[1:] == (parsed.qtype, parsed.edns, parsed.do, parsed.qend)


def test_parse_query_rejects_what_classify_rejects_as_malformed() -> None:
    truncated = dns.message.make_query("bad.test", "A").to_wire()[:-2]
    assert INDEX.classify(truncated, None) == NOT_SIMPLE
    with pytest.raises(WireError):
        parse_query(truncated)
