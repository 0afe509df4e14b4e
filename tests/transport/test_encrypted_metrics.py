"""DoT and DoH queries are counted under their own transport label (resolver/stats.py)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import dns.message
import dns.query
from tls_helpers import (
    SERVER_NAME,
    client_context,
    encrypted_config,
    make_pki,
    ports,
    wait_for_port,
)

from tests.stub_upstream import LachanProcess, StubUpstream, free_port


def _samples(text: str, family: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(rf"{family}\{{(.*)\}} ([0-9.e+]+)$", line)
        if match:
            transport = re.search(r'transport="(\w+)"', match.group(1))
            if transport:
                key = transport.group(1)
                found[key] = found.get(key, 0.0) + float(match.group(2))
    return found


def test_queries_over_dot_and_doh_are_counted_with_transport_dot_and_doh(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    dot, doh, metrics = ports(), ports(), free_port(("127.0.0.1",))
    extra = f'metrics: {{listen: "127.0.0.1:{metrics}"}}\n'
    with StubUpstream() as stub:
        process = LachanProcess(tmp_path, [stub.address], encrypted_config(pki, dot, doh, extra))
        with process:
            wait_for_port(dot)
            wait_for_port(doh)
            query = dns.message.make_query("www.example.test", "A")
            for _ in range(3):
                dns.query.tls(
                    query,
                    "127.0.0.1",
                    port=dot,
                    timeout=5,
                    ssl_context=client_context(pki),
                    server_hostname=SERVER_NAME,
                )
            for _ in range(4):  # a miss, a cache hit, then prepared answers (doh.py)
                dns.query.https(
                    query,
                    f"https://{SERVER_NAME}:{doh}/dns-query",
                    timeout=5,
                    bootstrap_address="127.0.0.1",
                    verify=client_context(pki, ("h2", "http/1.1")),
                )
            url = f"http://127.0.0.1:{metrics}/metrics"
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            process.assert_clean_log()
    queries = _samples(text, "lachan_queries_total")
    assert queries.get("dot") == 3 and queries.get("doh") == 4, queries
    durations = _samples(text, "lachan_request_duration_seconds_count")
    assert durations.get("dot") == 3 and durations.get("doh") == 4, durations


def test_an_expired_certificate_is_logged_and_plain_dns_is_served(tmp_path: Path) -> None:
    # A failed certbot renewal must not cost the plain-DNS clients anything: serve starts,
    # says what has happened, and answers; the metric carries the past expiry for the alert.
    pki = make_pki(tmp_path / "pki", days=-2)
    dot, doh = ports(), ports()
    with StubUpstream() as stub:
        process = LachanProcess(tmp_path, [stub.address], encrypted_config(pki, dot, doh))
        with process:
            query = dns.message.make_query("www.example.test", "A")
            answer = dns.query.udp(query, "127.0.0.1", port=process.port, timeout=5)
            assert answer.rcode() == 0 and answer.answer
            assert (
                f"tls.cert: {pki.cert} expired 2 days ago: DoT and DoH clients refuse it"
                in process.stderr()
            )
