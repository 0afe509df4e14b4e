"""Tests for resolver/response.py: scanning upstream answers for the cache, against answers
built by dnspython (the stub's zone) and hand-made broken ones."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode
import pytest

from resolver.response import ScannedAnswer, question_end, scan_answer
from resolver.wire import FORMERR, TC, WireError
from tests.stub_upstream import answer


def upstream(name: str, rdtype: str = "A", edns: int = 0, rcode: int | None = None) -> bytes:
    query = dns.message.make_query(name, rdtype, use_edns=edns)
    response = answer(query)
    if rcode is not None:
        response.set_rcode(rcode)
        response.answer.clear()
    return response.to_wire()


def scan(msg: bytes) -> ScannedAnswer:
    return scan_answer(msg, question_end(msg))


def ttls(scanned: ScannedAnswer) -> list[int]:
    return [int.from_bytes(scanned.body[o : o + 4], "big") for o in scanned.ttl_offsets]


def test_positive_answer() -> None:
    scanned = scan(upstream("www.example.test"))
    assert (scanned.rcode, scanned.ancount, scanned.nscount, scanned.arcount) == (0, 1, 0, 0)
    assert ttls(scanned) == [300]
    assert scanned.min_ttl == 300 and scanned.cacheable and not scanned.negative


def test_cname_chain_targets_and_ttls() -> None:
    scanned = scan(upstream("cname.example.test"))
    assert scanned.cname_targets == (
        b"\x02c2\x07example\x04test\x00",
        b"\x06target\x07example\x04test\x00",
    )
    assert ttls(scanned) == [300, 300, 300]


@pytest.mark.parametrize(
    "name", ["nx.example.test", "deeper.nx.example.test", "nodata.example.test"]
)
def test_negative_answer_ttl_is_min_of_soa_ttl_and_minimum(name: str) -> None:
    scanned = scan(upstream(name))
    assert scanned.negative and scanned.cacheable
    assert scanned.min_ttl == 30  # SOA TTL 60, MINIMUM 30 (RFC 2308 5)
    assert ttls(scanned) == [60]


def test_negative_answer_without_soa_is_not_cached() -> None:
    scanned = scan(upstream("www.example.test", rcode=dns.rcode.NXDOMAIN))
    assert scanned.negative and not scanned.cacheable


@pytest.mark.parametrize(
    "rcode", [dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.FORMERR, dns.rcode.NOTIMP]
)
def test_error_rcodes_are_not_cached(rcode: int) -> None:
    scanned = scan(upstream("www.example.test", rcode=rcode))
    assert scanned.rcode == rcode and not scanned.cacheable


def test_truncated_answer_is_not_cached() -> None:
    msg = bytearray(upstream("www.example.test"))
    msg[2] |= TC >> 8
    scanned = scan(bytes(msg))
    assert scanned.truncated and not scanned.cacheable


def test_opt_is_removed_from_the_body() -> None:
    with_opt = upstream("www.example.test", edns=0)
    without = upstream("www.example.test", edns=-1)
    a, b = scan(with_opt), scan(without)
    assert a.arcount == 0 and a.body == b.body and a.ttl_offsets == b.ttl_offsets


def test_extended_rcode_from_opt() -> None:
    msg = dns.message.make_response(dns.message.make_query("x.example.test", "A", use_edns=0))
    msg.set_rcode(dns.rcode.BADVERS)
    assert scan(msg.to_wire()).rcode == 16


GLUE = b"\x02ns\x00\x00\x01\x00\x01\x00\x00\x00\x4d\x00\x04\x0a\x00\x00\x35"  # ns. 77 A 10.0.0.53


def test_opt_in_the_middle_of_additional_is_cut_out() -> None:
    msg = bytearray(upstream("www.example.test", edns=0))
    msg[11] = 2  # OPT, then an uncompressed A record after it
    scanned = scan(bytes(msg) + GLUE)
    assert scanned.arcount == 1 and ttls(scanned) == [300, 77]
    assert scanned.body.endswith(GLUE)


def test_opt_in_the_middle_with_compression_after_it_is_refused() -> None:
    # Cutting the OPT out would move later names; with pointers after it, refuse (rare).
    msg = bytearray(upstream("www.example.test", edns=0))
    msg[11] = 2
    with pytest.raises(WireError):
        scan(bytes(msg) + b"\xc0\x0c" + GLUE[4:])


def test_two_opt_records_are_rejected() -> None:
    msg = bytearray(upstream("www.example.test", edns=0))
    opt = msg[-11:]
    msg[11] = 2
    with pytest.raises(WireError):
        scan(bytes(msg + opt))


def test_ttl_with_top_bit_set_counts_as_zero() -> None:
    # RFC 2181 8: a TTL with the most significant bit set is treated as zero.
    msg = bytearray(upstream("www.example.test", edns=-1))
    end = question_end(bytes(msg))
    scanned = scan(bytes(msg))
    offset = end + scanned.ttl_offsets[0]
    msg[offset : offset + 4] = (0x80000000 | 300).to_bytes(4, "big")
    assert scan(bytes(msg)).min_ttl == 0


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda m: m[:-3], id="rdata cut"),
        pytest.param(lambda m: m[:-12], id="record header cut"),
        pytest.param(lambda m: m[:11], id="shorter than a header"),
        pytest.param(lambda m: b"", id="empty"),
        pytest.param(lambda m: m[:7] + b"\x05" + m[8:], id="ancount too high"),
    ],
)
def test_broken_answers_raise_wire_error(broken) -> None:  # type: ignore[no-untyped-def]
    msg = upstream("www.example.test", edns=-1)
    with pytest.raises(WireError) as caught:
        scan_answer(broken(msg), 34)
    assert caught.value.rcode == FORMERR


def test_malformed_soa_rdata_is_rejected() -> None:
    msg = bytearray(upstream("nx.example.test", edns=-1))
    rdlen_at = question_end(bytes(msg)) + scan(bytes(msg)).ttl_offsets[0] + 4
    del msg[-4:]  # drop MINIMUM: 16 bytes of numbers instead of 20
    size = int.from_bytes(msg[rdlen_at : rdlen_at + 2], "big") - 4
    msg[rdlen_at : rdlen_at + 2] = size.to_bytes(2, "big")
    with pytest.raises(WireError):
        scan(bytes(msg))


def test_question_end() -> None:
    msg = upstream("www.example.test", edns=-1)
    assert question_end(msg) == 12 + 18 + 4
    with pytest.raises(WireError):
        question_end(msg[:20])
    with pytest.raises(WireError):
        question_end(msg[:32])


# -- answers we would pass on must stay well formed (found by the mutating upstream fuzzer) --
def _record(owner: bytes, rtype: int, rdata: bytes, ttl: int = 60) -> bytes:
    return (
        owner
        + rtype.to_bytes(2, "big")
        + b"\x00\x01"
        + ttl.to_bytes(4, "big")
        + len(rdata).to_bytes(2, "big")
        + rdata
    )


QUERY_PART = bytes.fromhex("abcd8180000100010000000003777777076578616d706c6504746573740000010001")


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(_record(b"\xc0\x0c", 1, b"\xc0\x00\x02"), id="A of 3 bytes"),
        pytest.param(_record(b"\xc0\x0c", 28, b"\x20\x01" * 4), id="AAAA of 8 bytes"),
        pytest.param(
            _record(b"\xc0\x00", 1, b"\xc0\x00\x02\x01"), id="owner points into the header"
        ),
        pytest.param(_record(b"\xc0\x30", 1, b"\xc0\x00\x02\x01"), id="owner points forward"),
        pytest.param(
            _record(b"\xff\x0c", 1, b"\xc0\x00\x02\x01"), id="owner pointer out of the message"
        ),
        pytest.param(_record(b"\xc0\x0c", 5, b"\x01a\xc0\x40"), id="CNAME target points forward"),
        pytest.param(
            _record(b"\xc0\x0c", 5, b"\x01a\x00junk"), id="CNAME rdata longer than the name"
        ),
        pytest.param(_record(b"\xc0\x0c", 15, b"\x00\x0a"), id="MX without exchange"),
        pytest.param(_record(b"\xc0\x0c", 16, b"\x05abc"), id="TXT string overruns"),
        pytest.param(_record(b"\xc0\x0c", 16, b""), id="TXT empty"),
        pytest.param(
            _record(b"\xc0\x0c", 6, b"\x00\x00" + b"\x00" * 19), id="SOA in answer, short"
        ),
    ],
)
def test_rdata_that_would_break_clients_is_rejected(record: bytes) -> None:
    with pytest.raises(WireError):
        scan(QUERY_PART + record)


@pytest.mark.parametrize(
    "record",
    [
        _record(b"\xc0\x0c", 1, b"\xc0\x00\x02\x01"),
        _record(b"\xc0\x0c", 16, b"\x00"),
        _record(b"\xc0\x0c", 15, b"\x00\x0a\x02mx\xc0\x10"),
        _record(b"\xc0\x0c", 99, b"\xff\xff\xff"),  # opaque type: passed on as is
    ],
)
def test_sound_rdata_is_accepted(record: bytes) -> None:
    assert scan(QUERY_PART + record).ancount == 1


def test_bytes_after_the_counted_records_are_dropped() -> None:
    record = _record(b"\xc0\x0c", 1, b"\xc0\x00\x02\x01")
    scanned = scan(QUERY_PART + record + b"trailing junk")
    assert scanned.body == record


def test_opt_outside_the_additional_section_is_rejected() -> None:
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    with pytest.raises(WireError):
        scan(QUERY_PART + opt)  # counted as an answer record
