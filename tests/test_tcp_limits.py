"""Tests for resolver/transport/tcp_limits.py: who is turned away at accept, and why (the
``reason`` label of lachan_tcp_refused_total), with the real TcpLimiter and Stats."""

from __future__ import annotations

from resolver.ratelimit import RateLimitConfig
from resolver.stats import TCP_REFUSAL_REASONS, Stats
from resolver.transport.tcp_limits import TcpPolicy, TcpServerState, tcp_limiter


def state(**policy: int) -> tuple[TcpServerState, Stats]:
    stats = Stats()
    config = RateLimitConfig(tcp_per_client=2, tcp_total=3)
    return TcpServerState(TcpPolicy(**policy), tcp_limiter(config), stats), stats


def test_a_denied_address_is_refused_before_any_count() -> None:
    tcp, stats = state()
    assert tcp.refusal("192.0.2.1", allowed=False, proxied=False) == "acl"
    assert tcp.limiter is not None and tcp.limiter.open == 0
    assert stats.tcp_refused == {"acl": 1}


def test_per_client_then_total_caps() -> None:
    tcp, stats = state()
    assert tcp.refusal("10.0.0.1", True, False) is None
    assert tcp.refusal("10.0.0.1", True, False) is None
    assert tcp.refusal("10.0.0.1", True, False) == "per_client"
    assert tcp.refusal("10.0.0.2", True, False) is None
    assert tcp.refusal("10.0.0.3", True, False) == "total"
    tcp.closed("10.0.0.1", proxied=False)
    assert tcp.refusal("10.0.0.3", True, False) is None
    assert stats.tcp_refused == {"per_client": 1, "total": 1}
    assert set(stats.tcp_refused) <= set(TCP_REFUSAL_REASONS)


def test_a_trusted_proxy_is_not_capped_per_client_but_by_max_connections() -> None:
    tcp, _ = state(max_connections=1)
    for _ in range(5):  # dnsdist's pool: many connections from one address
        assert tcp.refusal("127.0.0.1", allowed=False, proxied=True) is None
    tcp.connections.add(object())
    assert tcp.refusal("127.0.0.1", allowed=False, proxied=True) == "total"


def test_without_a_ratelimit_section_only_max_connections_applies() -> None:
    tcp = TcpServerState(TcpPolicy(max_connections=1), tcp_limiter(None))
    for _ in range(5):
        assert tcp.refusal("10.0.0.1", True, False) is None
    tcp.connections.add(object())
    assert tcp.refusal("10.0.0.1", True, False) == "total"
