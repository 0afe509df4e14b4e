"""Hostile upstream: the stub answers with the right ID and question but mutated flags, counts
and records. Every client query still gets a well-formed answer (an upstream answer that
scans, or SERVFAIL), and lachan logs no error; and no hostile answer (garbage, noise, a wrong
ID or question, SERVFAIL, REFUSED, cut or mutated records) replaces a good stale one.

The oracle is dnspython, used two ways: its name decoder checks the structure of every
answer (counts, names, pointers, lengths, nothing trailing); and where every record is of a
type lachan checks (A, AAAA, NS, CNAME, SOA, PTR, MX, TXT), the whole message must parse.
Other types are opaque to a forwarder (RFC 3597) and their content is the upstream's affair.
"""

from __future__ import annotations

import time

import dns.message
import dns.query
import dns.rcode

from tests.conftest import LachanFactory
from tests.fuzz.run import record_types
from tests.stub_upstream import StubUpstream, raw_udp

NAMES = ["www", "cname", "nx", "nodata", "big", "short", "x.ttl50"]
TYPES = ["A", "AAAA", "TXT", "MX", "NS", "SOA", "PTR"]
CHECKED = {1, 2, 5, 6, 12, 15, 16, 28, 41}


def test_mutated_upstream_answers(lachan: LachanFactory, stub: StubUpstream) -> None:
    server = lachan(config="upstream: {timeout: 0.3}\ncache: {serve_stale: false}\n")
    stub.mode = "mutate"
    rcodes: dict[int, int] = {}
    for i in range(700):
        name = f"m{i}.{NAMES[i % len(NAMES)]}.example.test"
        query = dns.message.make_query(name, TYPES[i % len(TYPES)], use_edns=i % 2 - 1)
        wire = raw_udp(server.port, query.to_wire(), timeout=3)
        assert wire is not None, f"no answer for {name}"
        types = record_types(wire)
        if set(types) <= CHECKED:
            reply = dns.message.from_wire(wire)
            assert reply.id == query.id and reply.question == query.question
        rcodes[wire[3] & 0x0F] = rcodes.get(wire[3] & 0x0F, 0) + 1
    assert rcodes.get(dns.rcode.SERVFAIL, 0) > 0  # some mutations were caught
    assert sum(rcodes.values()) == 700
    stub.mode = "normal"
    healthy = dns.query.udp(
        dns.message.make_query("after.example.test", "A"), "127.0.0.1", port=server.port, timeout=3
    )
    assert healthy.answer


HOSTILE = ["garbage", "noise", "wrong_id", "wrong_question", "servfail", "refused",
           "truncated_bytes", "mutate"]  # fmt: skip


def test_no_hostile_answer_replaces_a_good_stale_one(
    lachan: LachanFactory, stub: StubUpstream
) -> None:
    # Each mode refreshes an expired good answer with garbage; the good one must survive it
    # (RFC 8767: served stale, EDE 3) and still be there when the upstream then goes silent.
    server = lachan(config="upstream: {timeout: 0.1}\ncache: {serve_stale: true}\n")
    names = {mode: f"{mode.replace('_', '-')}.ttl1.example.test" for mode in HOSTILE}
    for name in names.values():
        assert _addresses(server.port, name) == (dns.rcode.NOERROR, ["192.0.2.10"])
    time.sleep(1.2)  # past every TTL
    for mode, name in names.items():
        stub.mode = mode
        assert _addresses(server.port, name) == (dns.rcode.NOERROR, ["192.0.2.10"]), mode
        stub.mode = "drop"
        assert _addresses(server.port, name) == (dns.rcode.NOERROR, ["192.0.2.10"]), mode
    stub.mode = "normal"
    assert _addresses(server.port, "fresh.example.test") == (dns.rcode.NOERROR, ["192.0.2.1"])


def _addresses(port: int, name: str) -> tuple[int, list[str]]:
    reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=3)
    return reply.rcode(), [r.to_text() for rrset in reply.answer for r in rrset]
