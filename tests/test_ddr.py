"""DDR (resolver/ddr.py): _dns.resolver.arpa SVCB names the DoT and DoH listeners (RFC 9462)."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
from tls_helpers import SERVER_NAME, encrypted_config, make_pki, ports, wait_for_port

from tests.stub_upstream import LachanProcess, StubUpstream


def _svcb(port: int, name: str = "_dns.resolver.arpa") -> dns.message.Message:
    query = dns.message.make_query(name, "SVCB", use_edns=0)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=5)


def test_plain_dns_clients_discover_the_encrypted_listeners(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    dot, doh = ports(), ports()
    with StubUpstream() as stub:
        process = LachanProcess(tmp_path, [stub.address], encrypted_config(pki, dot, doh))
        with process:
            wait_for_port(dot)
            wait_for_port(doh)
            found = _svcb(process.port)
            other = _svcb(process.port, "other.resolver.arpa")
            address = dns.query.udp(
                dns.message.make_query("_dns.resolver.arpa", "A"),
                "127.0.0.1",
                port=process.port,
                timeout=5,
            )
            process.assert_clean_log()
    (rrset,) = found.answer
    assert rrset.rdtype == dns.rdatatype.SVCB and rrset.ttl == 300
    records = sorted(rrset, key=lambda r: r.priority)
    assert [r.target.to_text() for r in records] == [SERVER_NAME + "."] * 2
    texts = [r.to_text() for r in records]
    assert texts[0] == f'1 {SERVER_NAME}. alpn="dot" port="{dot}"'
    assert texts[1] == f'2 {SERVER_NAME}. alpn="h2" port="{doh}" dohpath="/dns-query{{?dns}}"'
    # Everything else under resolver.arpa stays NODATA, as the anti-bypass switch says.
    assert not other.answer and not address.answer


def test_without_encrypted_listeners_ddr_stays_nodata(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with StubUpstream() as stub:
        with LachanProcess(tmp_path, [stub.address], encrypted_config(pki)) as process:
            found = _svcb(process.port)
    assert found.rcode() == 0 and not found.answer
