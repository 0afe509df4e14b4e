"""Black-box conformance from the RFCs, run against lachan and unbound side by side.

Both forward to the same stub upstream. Every case observes a normalised view of the answer
(rcode, flags, question as sent, sections, OPT) from each server; where unbound is right,
lachan must give the same. Where they differ on purpose, the case says why (``DIFFERENCES``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.conformance.unbound_ref import Unbound
from tests.stub_upstream import LachanProcess, StubUpstream, raw_udp

HEADER = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
WWW = b"\x03www\x07example\x04test\x00"
A_IN = b"\x00\x01\x00\x01"
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"  # version 0, no flags, no options


@dataclass(frozen=True)
class Servers:
    lachan: int
    unbound: int


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with StubUpstream(seed=7) as stub:
        workdir = tmp_path_factory.mktemp("conformance")
        unbound = Unbound(workdir, stub.port).start()
        lachan = LachanProcess(workdir, [stub.address], ipv6=False).start()
        try:
            yield Servers(lachan.port, unbound.port)
        finally:
            unbound.stop()
            assert lachan.alive(), lachan.stderr()
            lachan.stop()
            lachan.assert_clean_log()


FLAG_NAMES = {
    dns.flags.QR: "qr",
    dns.flags.AA: "aa",
    dns.flags.TC: "tc",
    dns.flags.RD: "rd",
    dns.flags.RA: "ra",
    dns.flags.AD: "ad",
    dns.flags.CD: "cd",
}


def observe(data: bytes | None, ra: bool = True) -> tuple[object, ...] | str:
    """The parts of an answer both servers must agree on (TTLs and IDs excluded)."""
    if data is None:
        return "no reply"
    msg = dns.message.from_wire(data)
    flags = {name for bit, name in FLAG_NAMES.items() if msg.flags & bit and (ra or name != "ra")}
    opt = None
    if msg.edns >= 0:
        opt = (
            msg.edns,
            msg.ednsflags,
            tuple(o.otype for o in msg.options if o.otype != dns.edns.EDE),
        )
    return (
        dns.rcode.to_text(msg.rcode()),
        tuple(sorted(flags)),
        tuple(q.to_text() for q in msg.question),  # exact letter case (0x20)
        tuple(sorted(_rrset(r) for r in msg.answer)),
        tuple(sorted(dns.rdatatype.to_text(r.rdtype) for r in msg.authority)),
        opt,
    )


def _rrset(rrset: dns.rrset.RRset) -> str:
    return f"{rrset.name.to_text().lower()} {dns.rdatatype.to_text(rrset.rdtype)} " + ",".join(
        sorted(r.to_text() for r in rrset)
    )


def both(servers: Servers, packet: bytes, ra: bool = True) -> tuple[object, object]:
    wait = 0.5 if packet[2] & 0x80 else 2.0  # QR=1 expects silence: do not wait long for it
    return (
        observe(raw_udp(servers.lachan, packet, timeout=wait), ra),
        observe(raw_udp(servers.unbound, packet, timeout=wait), ra),
    )


def query(name: str, rdtype: str = "A", rdclass: str = "IN", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, rdclass, **kw).to_wire()  # type: ignore[arg-type]


def with_flags(packet: bytes, set_bits: int = 0, clear_bits: int = 0) -> bytes:
    flags = ((packet[2] << 8) | packet[3]) & ~clear_bits | set_bits
    return packet[:2] + flags.to_bytes(2, "big") + packet[4:]


# -- the same answer from both: RFC 1035, 2181, 2308, 6891 ---------------------------------
SAME = {
    "A": query("www.example.test"),
    "AAAA": query("www.example.test", "AAAA"),
    "TXT": query("txt.example.test", "TXT"),
    "CNAME chain (RFC 1034 3.6.2)": query("cname.example.test"),
    "NXDOMAIN with SOA (RFC 2308 2.1)": query("nx.example.test"),
    "NODATA with SOA (RFC 2308 2.2)": query("nodata.example.test"),
    "unknown type (RFC 3597)": query("www.example.test", "TYPE65280"),
    "type 0": HEADER + WWW + b"\x00\x00\x00\x01",
    "outside the zone": query("outside.example.net"),
    "0x20 mixed case (question echoed exactly)": query("MiXeD.ExAmPlE.TeSt"),
    "escaped label byte": HEADER + b"\x03a\x00b\x07example\x04test\x00" + A_IN,
    "CD copied (RFC 4035 3.2.2)": with_flags(query("www.example.test"), set_bits=dns.flags.CD),
    "AA in a query ignored": with_flags(query("www.example.test"), set_bits=dns.flags.AA),
    "AD in a query (RFC 6840 5.7)": with_flags(query("www.example.test"), set_bits=dns.flags.AD),
    "Z bit ignored": with_flags(query("www.example.test"), set_bits=0x0040),
    "RA and rcode in a query ignored": with_flags(query("www.example.test"), set_bits=0x0085),
    "trailing bytes after the question": query("www.example.test") + b"junk",
    "EDNS echoed (RFC 6891 6.1.1)": query("www.example.test", use_edns=0),
    "DO echoed (RFC 3225 3)": query("www.example.test", use_edns=0, ednsflags=dns.flags.DO),
    "unknown EDNS flags not echoed (RFC 6891 6.1.4)": query(
        "www.example.test", use_edns=0, ednsflags=0x7FFF
    ),
    "unknown EDNS option not echoed (RFC 6891 6.1.2)": query(
        "www.example.test", use_edns=0, options=[dns.edns.GenericOption(65001, b"x")]
    ),
    "EDNS version 1: BADVERS, OPT version 0 (RFC 6891 6.1.3)": query(
        "www.example.test", use_edns=1
    ),
    "tiny EDNS buffer reads as 512 (RFC 6891 6.2.5)": query(
        "www.example.test", use_edns=0, payload=100
    ),
    "TC over UDP with EDNS 1232 (RFC 7766 5)": query(
        "big.example.test", "TXT", use_edns=0, payload=1232
    ),
    "TC over UDP without EDNS (512)": query("big.example.test", "TXT"),
    "QR=1: no reply (RFC 5452 reflection)": with_flags(
        query("www.example.test"), set_bits=dns.flags.QR
    ),
    "root NS": query(".", "NS"),
    # An unknown opcode: QR, the opcode, RD and CD echoed, nothing else (no RA), as unbound.
    "opcode IQUERY: NOTIMP (RFC 3425)": with_flags(query("www.example.test"), set_bits=1 << 11),
    "opcode STATUS: NOTIMP": with_flags(query("www.example.test"), set_bits=2 << 11),
    "opcode 3: NOTIMP": with_flags(query("www.example.test"), set_bits=3 << 11),
    "opcode 6: NOTIMP": with_flags(query("www.example.test"), set_bits=6 << 11),
    "opcode 15: NOTIMP": with_flags(query("www.example.test"), set_bits=15 << 11),
    "opcode 2 with CD: NOTIMP": with_flags(
        query("www.example.test"), set_bits=(2 << 11) | dns.flags.CD
    ),
    "opcode 2 without RD: NOTIMP": with_flags(
        query("www.example.test"), set_bits=2 << 11, clear_bits=dns.flags.RD
    ),
}


@pytest.mark.parametrize("packet", list(SAME.values()), ids=list(SAME))
def test_same_as_unbound(servers: Servers, packet: bytes) -> None:
    ours, reference = both(servers, packet)
    assert ours == reference


# Error answers: unbound clears RA when it cannot parse, lachan always advertises it (RA says
# recursion is available, RFC 1035 4.1.1; true for any answer). The rest must match.
SAME_EXCEPT_RA = {
    "qdcount 0: FORMERR": HEADER[:4] + b"\x00\x00" + HEADER[6:],
    "OPT as qtype: FORMERR": query("www.example.test", "OPT"),
    "TSIG as qtype: FORMERR": query("www.example.test", "TSIG"),
    "MAILA as qtype: FORMERR": query("www.example.test", "MAILA"),
    "AXFR over UDP: REFUSED (RFC 5936)": query("example.test", "AXFR"),
    "IXFR: REFUSED": query("example.test", "IXFR"),
}


@pytest.mark.parametrize("packet", list(SAME_EXCEPT_RA.values()), ids=list(SAME_EXCEPT_RA))
def test_same_as_unbound_but_ra(servers: Servers, packet: bytes) -> None:
    ours, reference = both(servers, packet, ra=False)
    assert ours == reference


# -- deliberate differences, each with the reason ------------------------------------------
def _formerr_clean(data: bytes | None) -> None:
    assert data is not None
    msg = dns.message.from_wire(data)  # parses: unbound's echo of a broken packet does not
    assert msg.rcode() == dns.rcode.FORMERR and msg.flags & dns.flags.QR


MALFORMED = {
    "ancount 1": HEADER[:7] + b"\x01" + HEADER[8:] + WWW + A_IN,
    "nscount 1": HEADER[:9] + b"\x01" + HEADER[10:] + WWW + A_IN,
    "qdcount 2": HEADER[:5] + b"\x02" + HEADER[6:] + WWW + A_IN + WWW + A_IN,
    "truncated question": HEADER + WWW[:5],
    "no qtype": HEADER + WWW,
    "label length 64": HEADER + b"\x40" + b"a" * 64 + b"\x00" + A_IN,
    "pointer loop": HEADER + b"\xc0\x0c" + A_IN,
    "forward pointer": HEADER + b"\x01a\xc0\x14" + A_IN + b"\x00" * 4,
    "two OPT records": HEADER[:11] + b"\x02" + WWW + A_IN + OPT + OPT,
}


@pytest.mark.parametrize("packet", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_gets_a_clean_formerr(servers: Servers, packet: bytes) -> None:
    """unbound echoes the broken packet back with QR and FORMERR set and the counts unchanged
    (so its "answer" is itself malformed); lachan answers a well-formed FORMERR: the header,
    and the question only when it could be read (RFC 1035 4.1.1 leaves this open). Both
    answer FORMERR, which is what RFC 1035 and RFC 6891 7 (two OPT records) ask for."""
    reply = raw_udp(servers.unbound, packet)
    assert reply is not None and reply[3] & 0x0F == dns.rcode.FORMERR
    _formerr_clean(raw_udp(servers.lachan, packet))


def test_notify_and_update(servers: Servers) -> None:
    """unbound answers NOTIFY with REFUSED and echoes UPDATE malformed; RFC 1996 and RFC 2136
    say a server that does not implement them answers NOTIMP, which lachan does."""
    for opcode in (4, 5):
        packet = with_flags(query("example.test", "SOA"), set_bits=opcode << 11)
        msg = dns.message.from_wire(raw_udp(servers.lachan, packet) or b"")
        assert msg.rcode() == dns.rcode.NOTIMP and msg.opcode() == opcode


def test_no_rd(servers: Servers) -> None:
    """RD=0 (dig +norec) for a cached name: both answer from the cache. RFC 1035 4.1.1 says RD
    is copied into the response; unbound 1.17 sets RD anyway (from its cached message), lachan
    copies it: here lachan is right and unbound is not, so flags are compared apart.
    For an uncached name lachan forwards anyway: its clients are stubs that always mean
    "resolve this", and a forwarder has no referral to give instead."""
    warm = query("norec.example.test")
    both(servers, warm)
    norec = with_flags(warm, clear_bits=dns.flags.RD)
    ours, reference = both(servers, norec)
    assert isinstance(ours, tuple) and isinstance(reference, tuple)
    assert ours[0] == reference[0] and ours[2:] == reference[2:]
    assert ours[1] == ("qr", "ra")
    uncached = with_flags(query("norec-cold.example.test"), clear_bits=dns.flags.RD)
    msg = dns.message.from_wire(raw_udp(servers.lachan, uncached) or b"")
    assert msg.rcode() == dns.rcode.NOERROR and msg.answer and not msg.flags & dns.flags.RD


def test_tc_bit_in_a_query(servers: Servers) -> None:
    """unbound answers a query with TC=1 FORMERR. RFC 1035 defines TC only for responses and
    RFC 6891/7766 give it no meaning in a query; lachan ignores it, like the other unused bits
    (a stub that sets it by mistake still gets its answer)."""
    packet = with_flags(query("www.example.test"), set_bits=dns.flags.TC)
    msg = dns.message.from_wire(raw_udp(servers.lachan, packet) or b"")
    assert msg.rcode() == dns.rcode.NOERROR and msg.answer and not msg.flags & dns.flags.TC


@pytest.mark.parametrize("rdclass", ["NONE", "HS", "CH", "CLASS0", "ANY"])
def test_other_classes_are_forwarded(servers: Servers, rdclass: str) -> None:
    """unbound refuses non-IN classes itself (it can only iterate IN; CH it answers for its own
    names) and answers class ANY from IN data. lachan is a forwarder: it passes any class on
    and returns what the upstream says. The stub refuses these classes; an upstream REFUSED is
    a failure for lachan, as for unbound, so after trying every upstream the answer is
    SERVFAIL. Never dropped, never NXDOMAIN (issue 2)."""
    name = "version.bind" if rdclass == "CH" else "www.example.test"
    rdtype = "TXT" if rdclass == "CH" else "A"
    ours = dns.message.from_wire(raw_udp(servers.lachan, query(name, rdtype, rdclass)) or b"")
    expected = dns.rcode.NOERROR if rdclass == "CH" else dns.rcode.SERVFAIL
    assert ours.rcode() == expected and ours.question[0].rdclass == dns.rdataclass.from_text(
        rdclass
    )


# -- TCP: RFC 7766 -------------------------------------------------------------------------
def tcp_exchange(port: int, packets: list[bytes]) -> list[bytes]:
    """Send every packet in one write on one connection; return the answers as they come."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
        replies = []
        buffer = b""
        while len(replies) < len(packets):
            chunk = sock.recv(65535)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                size = int.from_bytes(buffer[:2], "big")
                replies.append(buffer[2 : 2 + size])
                buffer = buffer[2 + size :]
    return replies


def test_tcp_full_answer_and_pipelining(servers: Servers) -> None:
    packets = [query("big.example.test", "TXT")] + [
        query(f"pipe{i}.example.test") for i in range(20)
    ]
    ours = tcp_exchange(servers.lachan, packets)
    reference = tcp_exchange(servers.unbound, packets)
    assert len(ours) == len(reference) == len(packets)
    key: Callable[[bytes], object] = lambda r: (r[:2], observe(r))  # noqa: E731 - sort by ID
    assert sorted(map(key, ours), key=str) == sorted(map(key, reference), key=str)


def test_negative_ttl_is_capped_by_soa_minimum(servers: Servers) -> None:
    """RFC 2308 5: the SOA in a negative answer carries min(SOA TTL, MINIMUM)."""
    for port in (servers.lachan, servers.unbound):
        msg = dns.message.from_wire(raw_udp(port, query("ttl.nx.example.test")) or b"")
        assert msg.rcode() == dns.rcode.NXDOMAIN and 0 < msg.authority[0].ttl <= 30


def test_cached_ttls_never_grow(servers: Servers) -> None:
    for port in (servers.lachan, servers.unbound):
        first = dns.message.from_wire(raw_udp(port, query("ttlgrow.example.test")) or b"")
        second = dns.message.from_wire(raw_udp(port, query("ttlgrow.example.test")) or b"")
        assert 0 < second.answer[0].ttl <= first.answer[0].ttl <= 300
