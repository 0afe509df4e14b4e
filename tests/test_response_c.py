"""The C answer scanner (resolver/_wire.c) against the Python one it replaced on the miss path.

Every input gives both the same ScannedAnswer, or both the same FORMERR message: answers
dnspython builds (every record type the scanner treats apart, EDNS, extended rcodes,
negative answers, truncation) and tens of thousands of seeded corruptions of them.
"""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from resolver import _nametable
from resolver.response import ScannedAnswer, question_end, scan_answer, scan_answer_py
from resolver.wire import WireError


def _outcome(scan, msg: bytes, qend: int) -> tuple[str, object]:
    try:
        answer = scan(msg, qend)
    except WireError as exc:
        return "error", str(exc)
    assert type(answer) is ScannedAnswer
    return "answer", tuple(answer)


def _response(qname: str, qtype: str, records: list[tuple[str, str, int, str, str]],
              rcode: int = 0, edns: bool = True, tc: bool = False) -> bytes:  # fmt: skip
    query = dns.message.make_query(qname, qtype, use_edns=edns)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if tc:
        response.flags |= dns.flags.TC
    for section, name, ttl, rtype, text in records:
        rrset = dns.rrset.from_text(name, ttl, "IN", rtype, text)
        getattr(response, section).append(rrset)
    return response.to_wire()


def corpus() -> list[bytes]:
    soa = "ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"
    return [
        _response("www.example.com.", "A", [("answer", "www.example.com.", 300, "A", "192.0.2.1")]),
        _response("www.example.com.", "A", [
            ("answer", "www.example.com.", 3600, "CNAME", "web.example.net."),
            ("answer", "web.example.net.", 60, "CNAME", "edge.cdn.example.org."),
            ("answer", "edge.cdn.example.org.", 20, "A", "192.0.2.7"),
            ("answer", "edge.cdn.example.org.", 20, "A", "192.0.2.8"),
        ]),  # fmt: skip
        _response("v6.example.com.", "AAAA", [("answer", "v6.example.com.", 90, "AAAA", "2001:db8::1")]),
        _response("example.com.", "MX", [
            ("answer", "example.com.", 300, "MX", "10 mail.example.com."),
            ("additional", "mail.example.com.", 300, "A", "192.0.2.25"),
        ]),  # fmt: skip
        _response("example.com.", "TXT", [("answer", "example.com.", 300, "TXT", '"v=spf1 -all" "two"')]),
        _response("example.com.", "NS", [
            ("answer", "example.com.", 86400, "NS", "ns1.example.com."),
            ("answer", "example.com.", 86400, "NS", "ns2.example.com."),
        ]),  # fmt: skip
        _response("1.2.0.192.in-addr.arpa.", "PTR", [("answer", "1.2.0.192.in-addr.arpa.", 300, "PTR", "host.example.com.")]),
        _response("_sip._udp.example.com.", "SRV", [("answer", "_sip._udp.example.com.", 300, "SRV", "0 5 5060 sip.example.com.")]),
        _response("nx.example.com.", "A", [("authority", "example.com.", 900, "SOA", soa)], rcode=3),
        _response("nodata.example.com.", "AAAA", [("authority", "example.com.", 60, "SOA", soa)]),
        _response("nosoa.example.com.", "A", [], rcode=3),
        _response("fail.example.com.", "A", [], rcode=2),
        _response("big.example.com.", "A", [("answer", "big.example.com.", 30, "A", "192.0.2.9")], tc=True),
        _response("old.example.com.", "A", [("answer", "old.example.com.", 300, "A", "192.0.2.2")], edns=False),
        _response("ext.example.com.", "A", [], rcode=dns.rcode.BADVERS),
        _response("huge-ttl.example.com.", "A", [("answer", "huge-ttl.example.com.", 0x7FFFFFFF, "A", "192.0.2.3")]),
    ]  # fmt: skip


def _opt_not_last() -> bytes:
    """OPT, then one more additional record with no compressed name (allowed)."""
    wire = bytearray(
        _response("x.example.com.", "A", [("answer", "x.example.com.", 5, "A", "192.0.2.4")])
    )
    wire[11] += 1  # arcount: the OPT and one more
    wire += b"\x01z\x00" + b"\x00\x01\x00\x01" + b"\x00\x00\x00\x05" + b"\x00\x04" + bytes(4)
    return bytes(wire)


def _with_ttl_top_bit() -> bytes:
    wire = bytearray(
        _response("t.example.com.", "A", [("answer", "t.example.com.", 5, "A", "192.0.2.5")])
    )
    qend = question_end(bytes(wire))
    wire[qend + 6] |= 0x80  # the first record's TTL: RFC 2181 8 makes it zero
    return bytes(wire)


def test_the_extension_has_the_scanner_and_scan_answer_uses_it() -> None:
    assert hasattr(_nametable, "scan_answer")
    assert scan_answer is not scan_answer_py


@pytest.mark.parametrize("index", range(len(corpus()) + 2))
def test_every_kind_of_answer_scans_the_same(index: int) -> None:
    messages = corpus() + [_opt_not_last(), _with_ttl_top_bit()]
    msg = messages[index]
    qend = question_end(msg)
    c, py = _outcome(scan_answer, msg, qend), _outcome(scan_answer_py, msg, qend)
    assert c == py
    assert c[0] == "answer"  # well-formed answers are accepted, not just agreed on


def test_seeded_corruptions_give_the_same_answer_or_the_same_error() -> None:
    rng = random.Random(13)
    seeds = corpus() + [_opt_not_last(), _with_ttl_top_bit()]
    kinds = {"answer": 0, "error": 0}
    for _ in range(40_000):
        msg = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            spot = rng.randrange(len(msg))
            action = rng.random()
            if action < 0.6:
                msg[spot] = rng.randrange(256)
            elif action < 0.8:
                del msg[spot:]
                if len(msg) < 13:
                    msg = bytearray(rng.choice(seeds))
            else:
                msg[spot:spot] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        data = bytes(msg)
        try:
            qend = question_end(data)
        except WireError:
            continue
        c, py = _outcome(scan_answer, data, qend), _outcome(scan_answer_py, data, qend)
        assert c == py, data.hex()
        kinds[c[0]] += 1
    # Both branches were exercised often, so agreement is not agreement on one outcome.
    assert kinds["answer"] > 5_000 and kinds["error"] > 5_000, kinds


def test_a_message_shorter_than_a_header_is_a_formerr() -> None:
    with pytest.raises(WireError, match="shorter than a header"):
        scan_answer(b"\x00" * 11, 11)
