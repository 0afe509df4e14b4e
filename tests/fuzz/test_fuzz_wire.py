"""Property tests (hypothesis) of the hot-path parsers: parse_query, read_name, skip_name and
scan_answer raise nothing but WireError/Unanswerable on any input, and never hang."""

from __future__ import annotations

import dns.message
import dns.rrset
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resolver.response import question_end, scan_answer
from resolver.wire import Unanswerable, WireError, check_name, read_name, skip_name
from resolver.wire_query import parse_query
from tests.fuzz import run
from tests.fuzz.packets import SEEDS
from tests.stub_upstream import answer

SETTINGS = settings(max_examples=1500, deadline=200, suppress_health_check=[HealthCheck.too_slow])

ANSWERS = [
    answer(dns.message.make_query(name, rdtype, use_edns=0)).to_wire(max_size=65535)
    for name, rdtype in [
        ("www.example.test", "A"),
        ("cname.example.test", "A"),
        ("nx.example.test", "A"),
        ("big.example.test", "TXT"),
        ("nodata.example.test", "AAAA"),
    ]
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[at] = draw(st.integers(0, 255))
        elif op == 1:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == 2:
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


PACKETS = st.one_of(st.binary(max_size=600), mutated(SEEDS))


@SETTINGS
@given(PACKETS)
@example(b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01")
def test_parse_query_raises_only_wire_errors(data: bytes) -> None:
    try:
        query = parse_query(data)
    except (WireError, Unanswerable):
        return
    assert query.qend <= len(data) and query.key.endswith(bytes((query.key[-1],)))
    assert len(query.key) - 5 <= 255


@SETTINGS
@given(st.binary(max_size=400), st.integers(0, 420))
def test_read_and_skip_name(data: bytes, pos: int) -> None:
    try:
        name, end = read_name(data, pos)
    except WireError:
        pass
    else:
        assert len(name) <= 255 and pos < end <= len(data)
    try:
        assert pos < skip_name(data, pos, len(data)) <= len(data)
    except WireError:
        pass


@SETTINGS
@given(st.one_of(st.binary(max_size=600), mutated(ANSWERS)))
def test_scan_answer_raises_only_wire_errors(data: bytes) -> None:
    try:
        scanned = scan_answer(data, question_end(data))
    except WireError:
        return
    for offset in scanned.ttl_offsets:
        assert 0 <= offset <= len(scanned.body) - 4
    assert 0 <= scanned.min_ttl <= 0x7FFFFFFF


def test_corpus_inputs_through_the_parsers() -> None:
    for path in sorted(run.CORPUS.glob("*.bin")):
        for data in run.load(path):
            try:
                parse_query(data)
            except (WireError, Unanswerable):
                pass


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 320))
def test_check_name_is_read_name_without_header_pointers(data: bytes, pos: int) -> None:
    try:
        end = check_name(data, pos)
    except WireError:
        end = -1
    try:
        expected = read_name(data, pos)[1]
    except WireError:
        expected = -1
    assert end == expected or (end == -1 and expected != -1)  # check_name may only be stricter
