"""Prefetch on a real ``lachan serve`` (issue 13): a popular name asked steadily across several
of its TTLs never waits for the upstream again after its first miss, although the upstream
takes 200 ms for every answer; the refreshes happen in the background and are counted."""

from __future__ import annotations

import time

import dns.message
import dns.query
from hardening_helpers import sample

from tests.conftest import LachanFactory
from tests.stub_upstream import StubUpstream, free_port

NAME = "popular.ttl4.example.test"  # the stub answers *.ttl4 with TTL 4: refresh from 3.6 s
UPSTREAM_DELAY = 0.2
EXPIRIES = 3


def test_a_popular_name_never_misses_across_its_expiries(
    lachan: LachanFactory, stub: StubUpstream
) -> None:
    metrics_port = free_port(("127.0.0.1",))
    server = lachan(
        config="site: {id: prefetch, kind: isp}\nlists: {enabled: false}\n"
        f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}\n',
        ipv6=False,
    )
    stub.mode, stub.delay = "slow", UPSTREAM_DELAY
    latencies: list[float] = []
    ttls: list[int] = []
    ends = time.monotonic() + 4 * EXPIRIES + 0.5
    while time.monotonic() < ends:
        query = dns.message.make_query(NAME, "A")
        started = time.monotonic()
        reply = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=3)
        latencies.append(time.monotonic() - started)
        assert reply.answer, reply
        ttls.append(reply.answer[0].ttl)
        time.sleep(0.05)
    assert latencies[0] >= UPSTREAM_DELAY  # the first was a miss
    slowest = max(latencies[1:])
    assert slowest < 0.1, f"a hit waited {slowest * 1000:.0f} ms: it went upstream"
    # Each expiry was refreshed in the background: the upstream saw the first miss and one
    # refresh per TTL, and the TTL the client saw went back up each time.
    assert stub.count(NAME) >= 1 + EXPIRIES
    assert sum(1 for a, b in zip(ttls, ttls[1:], strict=False) if b > a) >= EXPIRIES
    assert sample(metrics_port, "lachan_prefetch_total") >= EXPIRIES
