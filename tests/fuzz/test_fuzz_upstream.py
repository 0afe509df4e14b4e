"""Hostile upstream: the stub answers with the right ID and question but mutated flags, counts
and records. Every client query still gets a well-formed answer (an upstream answer that
scans, or SERVFAIL), and lachan logs no error.

The oracle is dnspython, used two ways: its name decoder checks the structure of every
answer (counts, names, pointers, lengths, nothing trailing); and where every record is of a
type lachan checks (A, AAAA, NS, CNAME, SOA, PTR, MX, TXT), the whole message must parse.
Other types are opaque to a forwarder (RFC 3597) and their content is the upstream's affair.
"""

from __future__ import annotations

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
