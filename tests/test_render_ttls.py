"""The C TTL countdown (resolver/_ttl.c) against the Python rendering it replaced on the hit
path: the same bytes for every body, offsets, clamp and age, and through CacheEntry for
answers dnspython builds (dnspython reads back the TTLs a client would see)."""

from __future__ import annotations

import random

import dns.message
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import _nametable
from resolver.cache import CacheEntry, render_ttls_py
from resolver.response import question_end, scan_answer
from resolver.settings import CachePolicy

render_ttls = _nametable.render_ttls
TTL = st.integers(0, 2**32 - 1)
SMALL = st.integers(0, 2**31 - 1)


def _body_and_offsets(data: st.DataObject) -> tuple[bytes, tuple[int, ...]]:
    size = data.draw(st.integers(4, 200))
    body = data.draw(st.binary(min_size=size, max_size=size))
    offsets = data.draw(st.lists(st.integers(0, size - 4), max_size=12))
    return body, tuple(offsets)


@settings(max_examples=2000, deadline=None)
@given(st.data(), SMALL, SMALL, SMALL)
def test_c_renders_as_python(data: st.DataObject, floor: int, ceiling: int, age: int) -> None:
    body, offsets = _body_and_offsets(data)  # offsets may overlap and repeat, in any order
    assert render_ttls(body, offsets, floor, ceiling, age) == render_ttls_py(
        body, offsets, floor, ceiling, age
    )


def test_edges_of_the_countdown() -> None:
    body = b"".join(
        ttl.to_bytes(4, "big") for ttl in (0, 5, 300, 0x7FFFFFFF, 0x80000000, 2**32 - 1)
    )
    offsets = tuple(range(0, len(body), 4))
    for floor, ceiling, age in [(0, 86400, 0), (30, 86400, 29), (0, 300, 300), (0, 2**31 - 1, 1),
                                (60, 10, 0), (0, 0, 0), (7, 7, 0)]:  # fmt: skip
        assert render_ttls(body, offsets, floor, ceiling, age) == render_ttls_py(
            body, offsets, floor, ceiling, age
        )
    # the top bit set counts as 0 (RFC 2181 8): clamped up to the floor, never a huge TTL
    assert render_ttls(body, (16,), 30, 86400, 0)[16:20] == (30).to_bytes(4, "big")


def test_the_input_is_never_changed_and_bad_offsets_raise() -> None:
    body = bytes(range(16))
    copy = bytes(body)
    render_ttls(body, (0, 8), 0, 10, 3)
    assert body == copy
    for offsets in [(13,), (-1,), (2**40,)]:
        with pytest.raises((ValueError, OverflowError)):
            render_ttls(body, offsets, 0, 10, 0)
    with pytest.raises(TypeError):
        render_ttls(bytearray(body), (0,), 0, 10, 0)


def _entry(ttls: list[int], negative: bool) -> tuple[CacheEntry, bytes]:
    """A cache entry for an answer of one record per TTL (a negative one: one SOA), stored
    at 100.0, and the message's header and question."""
    query = dns.message.make_query("example.com", "A")
    response = dns.message.make_response(query)
    if negative:
        response.set_rcode(3)
        soa = dns.rrset.from_text("com.", ttls[0], "IN", "SOA", "a. b. 1 2 3 4 3600")
        response.authority.append(soa)
    else:
        for i, ttl in enumerate(ttls):  # one name each: dnspython would merge one rrset's TTLs
            response.answer.append(
                dns.rrset.from_text(f"n{i}.example.com.", ttl, "IN", "A", "192.0.2.1")
            )
    wire = response.to_wire()
    qend = question_end(wire)
    answer = scan_answer(wire, qend)
    return CacheEntry(answer, 100.0, max(1, answer.min_ttl), 0), wire[:qend]


@pytest.mark.parametrize("negative", [False, True])
def test_cache_entries_count_down_as_a_client_reads_them(negative: bool) -> None:
    rng = random.Random(13)
    for _ in range(300):
        ttls = [rng.choice([0, 1, 29, 60, 300, 86400, 2**31 - 1]) for _ in range(rng.randint(1, 4))]
        policy = CachePolicy(min_ttl=rng.choice([0, 30]), max_ttl=rng.choice([300, 86400]))
        entry, head = _entry(ttls, negative)
        ceiling = entry.ttl if negative else policy.max_ttl
        for age in (0, 1, 2, 59, 299, 400):
            body = entry.body_at(100.0 + age + 0.5, policy)
            assert body == render_ttls_py(
                entry.answer.body, entry.answer.ttl_offsets, policy.min_ttl, ceiling, age
            )
            message = dns.message.from_wire(head + body)
            rrsets = message.authority if negative else message.answer
            assert [rrset.ttl for rrset in rrsets] == [
                max(0, min(max(ttl, policy.min_ttl), ceiling) - age) for ttl in ttls[: len(rrsets)]
            ]
        stale = entry.stale_body(policy)
        assert all(
            stale[off : off + 4] == policy.stale_answer_ttl.to_bytes(4, "big")
            for off in entry.answer.ttl_offsets
        )
