"""Real clients against ``lachan serve`` and the stub upstream: dnspython as an oracle and dig
as a user would run it (+tcp, +bufsize, +norec, 0x20 names, IPv6, unknown types, CH)."""

from __future__ import annotations

import re
import subprocess
import threading

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.stub_upstream import LachanProcess, StubUpstream
from tests.tools import require


def dig(server: LachanProcess, *args: str, host: str = "127.0.0.1") -> str:
    out = subprocess.run(
        [require("dig"), f"@{host}", "-p", str(server.port), "+time=3", "+tries=1", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return out.stdout


def status(output: str) -> str:
    match = re.search(r"status: (\w+)", output)
    assert match, output
    return match.group(1)


def flags(output: str) -> set[str]:
    match = re.search(r";; flags: ([a-z ]+);", output)
    assert match, output
    return set(match.group(1).split())


def answers(output: str) -> list[str]:
    section = output.split(";; ANSWER SECTION:\n", 1)
    if len(section) == 1:
        return []
    lines = section[1].split("\n\n", 1)[0].splitlines()
    return [" ".join(line.split()) for line in lines]


def udp(
    server: LachanProcess, name: str, rdtype: str = "A", host: str = "127.0.0.1", **kw: object
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    return dns.query.udp(query, host, port=server.port, timeout=3)


def tcp(server: LachanProcess, name: str, rdtype: str = "A", **kw: object) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    return dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=3)


# -- dnspython ----------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_and_aaaa_over_both_families(module_lachan: LachanProcess, host: str) -> None:
    a = udp(module_lachan, f"fam{host.count(':')}.example.test", "A", host=host)
    aaaa = udp(module_lachan, f"fam{host.count(':')}.example.test", "AAAA", host=host)
    assert a.answer[0][0].to_text() == "192.0.2.1"
    assert aaaa.answer[0][0].to_text() == "2001:db8::1"
    assert a.flags & dns.flags.RA and not a.flags & dns.flags.AA


def test_answers_are_cached_and_ttl_counts_down(
    module_lachan: LachanProcess, fresh_stub: StubUpstream
) -> None:
    first = udp(module_lachan, "cached.example.test")
    for _ in range(5):
        again = udp(module_lachan, "cached.example.test")
        assert again.answer[0][0].to_text() == "192.0.2.1"
        assert again.answer[0].ttl <= first.answer[0].ttl
    assert tcp(module_lachan, "cached.example.test").answer
    assert fresh_stub.count("cached.example.test") == 1


@pytest.mark.parametrize(
    ("name", "rcode", "section"),
    [
        ("nx.example.test", dns.rcode.NXDOMAIN, "authority"),
        ("nodata.example.test", dns.rcode.NOERROR, "authority"),
    ],
)
def test_negative_answers_carry_the_soa(
    module_lachan: LachanProcess, fresh_stub: StubUpstream, name: str, rcode: int, section: str
) -> None:
    got = udp(module_lachan, name)
    assert got.rcode() == rcode and not got.answer
    (soa,) = got.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl <= 30  # min(SOA TTL, MINIMUM)
    udp(module_lachan, name)
    assert fresh_stub.count(name) == 1  # negative caching (RFC 2308)


def test_cname_chain(module_lachan: LachanProcess) -> None:
    got = udp(module_lachan, "cname.example.test")
    assert [rrset.rdtype for rrset in got.answer] == [
        dns.rdatatype.CNAME,
        dns.rdatatype.CNAME,
        dns.rdatatype.A,
    ]


def test_big_answer_truncated_over_udp_complete_over_tcp(module_lachan: LachanProcess) -> None:
    small = udp(module_lachan, "big.example.test", "TXT", use_edns=0, payload=1232)
    assert small.flags & dns.flags.TC and not small.answer
    full = tcp(module_lachan, "big.example.test", "TXT")
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 22


def test_answer_over_4k_over_tcp(module_lachan: LachanProcess) -> None:
    got = tcp(module_lachan, "huge.example.test", "TXT")
    assert len(got.to_wire()) > 4096 and len(got.answer[0]) == 50


def test_0x20_case_is_echoed_exactly(
    module_lachan: LachanProcess, fresh_stub: StubUpstream
) -> None:
    for name in ("mIxEd.ExAmPlE.tEsT", "MIXED.EXAMPLE.TEST", "mixed.example.test"):
        got = udp(module_lachan, name)
        assert got.question[0].name.to_text() == name + "."
        assert got.answer[0].name.to_text().lower() == "mixed.example.test."
    assert fresh_stub.count("mixed.example.test") == 1  # one cache entry for every case


def test_unknown_type_and_chaos_class(module_lachan: LachanProcess) -> None:
    unknown = udp(module_lachan, "www.example.test", "TYPE65280")
    assert unknown.rcode() == dns.rcode.NOERROR and unknown.authority
    version = dns.query.udp(
        dns.message.make_query("version.bind", "TXT", "CH"),
        "127.0.0.1",
        port=module_lachan.port,
        timeout=3,
    )
    assert version.rcode() == dns.rcode.NOERROR
    assert version.answer[0][0].to_text() == '"lachan-test-stub"'


def test_concurrent_identical_misses_reach_the_upstream_once(
    module_lachan: LachanProcess, fresh_stub: StubUpstream
) -> None:
    fresh_stub.mode, fresh_stub.delay = "slow", 0.3
    results: list[str] = []

    def one() -> None:
        results.append(udp(module_lachan, "coalesce.example.test").answer[0][0].to_text())

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert results == ["192.0.2.1"] * 20
    assert fresh_stub.count("coalesce.example.test") == 1


# -- dig, as a user would -----------------------------------------------------------------
def test_dig_plain(module_lachan: LachanProcess) -> None:
    out = dig(module_lachan, "dig.example.test", "A")
    assert status(out) == "NOERROR" and {"qr", "rd", "ra"} <= flags(out) and "aa" not in flags(out)
    assert answers(out)[0].endswith("IN A 192.0.2.1")
    assert "; EDNS: version: 0, flags:; udp: 1232" in out


def test_dig_tcp_and_ipv6(module_lachan: LachanProcess) -> None:
    out = dig(module_lachan, "+tcp", "digtcp.example.test", "AAAA", host="::1")
    assert status(out) == "NOERROR" and "(TCP)" in out
    assert answers(out)[0].endswith("IN AAAA 2001:db8::1")


def test_dig_bufsize_512_gets_tc_then_retries_over_tcp(module_lachan: LachanProcess) -> None:
    out = dig(module_lachan, "+bufsize=512", "big.example.test", "TXT")
    assert ";; Truncated, retrying in TCP mode." in out
    assert status(out) == "NOERROR" and len(answers(out)) == 22
    ignored = dig(module_lachan, "+bufsize=512", "+ignore", "big.example.test", "TXT")
    assert "tc" in flags(ignored) and answers(ignored) == []


def test_dig_norec_is_echoed(module_lachan: LachanProcess) -> None:
    out = dig(module_lachan, "+norec", "norec.example.test")
    assert "rd" not in flags(out) and {"qr", "ra"} <= flags(out)
    assert status(out) == "NOERROR"


def test_dig_0x20_name(module_lachan: LachanProcess) -> None:
    out = dig(module_lachan, "DiG0x20.ExAmPlE.TeSt")
    assert ";DiG0x20.ExAmPlE.TeSt.\t\tIN\tA" in out
    assert status(out) == "NOERROR"


def test_dig_nxdomain_and_edns_version_1(module_lachan: LachanProcess) -> None:
    assert status(dig(module_lachan, "nx.example.test")) == "NXDOMAIN"
    badvers = dig(module_lachan, "+edns=1", "+noednsnegotiation", "www.example.test")
    assert status(badvers) == "BADVERS" and "; EDNS: version: 0," in badvers


def test_dig_unknown_option_not_echoed(module_lachan: LachanProcess) -> None:
    out = dig(module_lachan, "+ednsopt=65001:abcd", "+ednsflags=0x0100", "opt.example.test")
    assert status(out) == "NOERROR"
    pseudo = out.split(";; OPT PSEUDOSECTION:")[1].split(";; QUESTION SECTION:")[0]
    assert "65001" not in pseudo and "MBZ" not in pseudo
    assert "; EDNS: version: 0, flags:; udp: 1232" in out


def test_ipv6_upstream_and_listener(lachan) -> None:  # type: ignore[no-untyped-def]
    with StubUpstream(host="::1") as v6:
        server = lachan(upstreams=[v6.address])
        got = udp(server, "six.example.test", "AAAA", host="::1")
        assert got.answer[0][0].to_text() == "2001:db8::1"
        big = tcp(server, "big.example.test", "TXT")  # TC from the v6 stub, then TCP to it
        assert len(big.answer[0]) == 22
        assert v6.by_transport["tcp"] == 1


def test_upstream_queries_are_hard_to_spoof(lachan, stub: StubUpstream) -> None:  # type: ignore[no-untyped-def]
    """RFC 5452: random IDs, a fresh source port per query, the name's letter case at random
    (0x20, whatever case the client used), RD and EDNS set."""
    server = lachan()
    for i in range(60):
        udp(server, f"Spoof{i}.Example.Test")
    queries = [dns.message.from_wire(m) for m in stub.received[-60:]]
    assert len({q.id for q in queries}) >= 55
    assert len(stub.udp_sources) == 60
    names = [q.question[0].name.to_text() for q in queries]
    assert [n.lower() for n in names] == [f"spoof{i}.example.test." for i in range(60)]
    assert len(set(names)) == 60 and sum(n == n.lower() for n in names) <= 3
    for q in queries:
        assert q.flags & dns.flags.RD and q.edns == 0 and q.payload == 1232
