"""Rate limiting with a fake clock: fairness between sources, bounded memory, capped answers."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from resolver import reply
from resolver.errors import ConfigError
from resolver.ratelimit import (
    RateLimiter,
    TcpLimiter,
    Verdict,
    any_answer,
    prefix_keys,
)
from resolver.settings_limits import AnyMode, Limit, LimitAction, RateLimitConfig, ratelimit_config
from resolver.wire import NOERROR, REFUSED
from resolver.wire_query import parse_query


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SMALL = RateLimitConfig(
    ipv4=(Limit(32, 10, 20), Limit(24, 50, 100)),
    ipv6=(Limit(64, 10, 20), Limit(56, 50, 100)),
    action=LimitAction.DROP,
)


def _run(
    limiter: RateLimiter, clock: FakeClock, sources: dict[str, float], seconds: float
) -> dict[str, int]:
    """Send from each source at its rate (queries/s) for ``seconds``; count what passes.

    Arrivals within a millisecond are interleaved round-robin, starting from a different
    source each tick, as independent clients would be on the wire.
    """
    passed = dict.fromkeys(sources, 0)
    order, step, rounds = list(sources), 0.001, 0
    for tick in range(int(seconds / step)):
        clock.now += step
        due = {ip: int((tick + 1) * step * r) - int(tick * step * r) for ip, r in sources.items()}
        if not any(due.values()):
            continue
        rounds += 1
        turn = order[rounds % len(order) :] + order[: rounds % len(order)]
        while any(due.values()):
            for ip in turn:
                if due[ip]:
                    due[ip] -= 1
                    passed[ip] += limiter.check(ip) is Verdict.PASS
    return passed


def test_burst_then_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SMALL, clock=clock)
    results = [limiter.check("192.0.2.1") for _ in range(25)]
    assert results[:20] == [Verdict.PASS] * 20
    assert results[20:] == [Verdict.DROP] * 5
    clock.now += 0.5  # half a second at 10/s refills 5 tokens
    assert [limiter.check("192.0.2.1") for _ in range(6)] == [Verdict.PASS] * 5 + [Verdict.DROP]


def test_a_flood_from_one_source_does_not_starve_another() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SMALL, clock=clock)
    flood, quiet, elsewhere = "192.0.2.66", "192.0.2.7", "198.51.100.7"
    passed = _run(limiter, clock, {flood: 5000, quiet: 5, elsewhere: 5}, seconds=4)
    assert passed[quiet] == 20 and passed[elsewhere] == 20  # every query of the quiet ones
    assert passed[flood] <= 20 + 4 * 10 + 1  # burst + rate * time for the flooder


def test_many_hosts_of_one_24_share_its_bucket_but_not_each_others() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SMALL, clock=clock)
    hosts = {f"203.0.113.{i}": 20.0 for i in range(1, 11)}  # 200 q/s into a 50 q/s /24
    passed = _run(limiter, clock, hosts, seconds=5)
    assert sum(passed.values()) <= 100 + 5 * 50 + 10
    assert min(passed.values()) >= 0.5 * max(passed.values())  # nobody is shut out


def test_ipv6_prefixes_and_mapped_addresses() -> None:
    v6 = prefix_keys("2001:db8:1:2:aaaa::1", SMALL)
    assert v6 == prefix_keys("2001:db8:1:2:bbbb::9", SMALL)  # same /64
    assert v6 is not None and v6[1] == prefix_keys("2001:db8:1:3::1", SMALL)[1]  # type: ignore[index]
    assert prefix_keys("::ffff:192.0.2.1", SMALL) == prefix_keys("192.0.2.1", SMALL)
    assert prefix_keys("fe80::1%eth0", SMALL) == prefix_keys("fe80::1", SMALL)
    assert prefix_keys("bogus", SMALL) is None
    clock = FakeClock()
    limiter = RateLimiter(SMALL, clock=clock)
    # Rotating through a /64 (trivial for an IPv6 attacker) does not buy more tokens.
    verdicts = [limiter.check(f"2001:db8:1:2::{i:x}") for i in range(30)]
    assert verdicts.count(Verdict.PASS) == 20


def test_truncate_with_slip() -> None:
    config = RateLimitConfig(ipv4=(Limit(32, 1, 1),), action=LimitAction.TRUNCATE, slip=2)
    limiter = RateLimiter(config, clock=FakeClock())
    verdicts = [limiter.check("192.0.2.1") for _ in range(7)]
    assert verdicts == [Verdict.PASS] + [Verdict.DROP, Verdict.TRUNCATE] * 3
    assert (limiter.stats.truncated, limiter.stats.dropped) == (3, 3)
    always = RateLimiter(RateLimitConfig(ipv4=(Limit(32, 1, 1),), slip=1), clock=FakeClock())
    assert [always.check("192.0.2.1") for _ in range(3)][1:] == [Verdict.TRUNCATE] * 2


def test_memory_stays_bounded_under_a_spray_of_sources() -> None:
    clock = FakeClock()
    slow = (Limit(32, 1, 5), Limit(24, 1, 5))  # a bucket stays short for a second after use
    limiter = RateLimiter(RateLimitConfig(ipv4=slow, max_buckets=1000), clock=clock)
    for i in range(20000):
        clock.now += 0.0001
        limiter.check(f"10.{i >> 8 & 255}.{i & 255}.1")  # a new /24 every time
        assert len(limiter) <= 1000 and len(limiter._clients) <= 1000
    assert limiter.stats.evicted > 0


def test_sweep_forgets_only_refilled_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SMALL, clock=clock)
    for _ in range(30):
        limiter.check("192.0.2.1")
    limiter.check("198.51.100.1")
    clock.now += 1.0  # 198.51.100.1 spent 1 of 20: refilled; 192.0.2.1 is still short
    limiter.sweep(clock.now)
    keys = {key[2] for key in limiter._buckets}
    assert 0xC0000201 in keys and 0xC6336401 not in keys
    assert [limiter.check("192.0.2.1") for _ in range(11)].count(Verdict.PASS) == 10


def test_periodic_sweep_runs_from_check() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitConfig(sweep_interval=10), clock=clock)
    limiter.check("192.0.2.1")
    clock.now += 11
    limiter.check("192.0.2.2")
    assert limiter.stats.sweeps == 1 and len(limiter) == 2  # the stale pair went, a new pair came


def test_tcp_limits_per_client_and_total() -> None:
    tcp = TcpLimiter(per_client=2, total=3)
    assert tcp.try_open("192.0.2.1") and tcp.try_open("192.0.2.1")
    assert not tcp.try_open("192.0.2.1")
    assert tcp.try_open("192.0.2.2") and not tcp.try_open("192.0.2.3")
    tcp.closed("192.0.2.1")
    assert tcp.try_open("192.0.2.3")
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.3"):
        tcp.closed(ip)
    assert tcp.open == 0 and tcp._by_client == {}


def _query(qtype: str, edns: bool) -> dns.message.QueryMessage:
    return dns.message.make_query("example.com.", qtype, use_edns=0 if edns else False)


@pytest.mark.parametrize("edns", [False, True])
def test_truncated_answer_pushes_to_tcp_without_amplifying(edns: bool) -> None:
    query = _query("A", edns)
    wire = query.to_wire()
    answer = reply.minimal(parse_query(wire), 1232, NOERROR, tc=True)
    assert answer is not None and len(answer) <= len(wire)
    parsed = dns.message.from_wire(answer)
    assert parsed.flags & dns.flags.TC and parsed.rcode() == dns.rcode.NOERROR
    assert parsed.id == query.id and parsed.question == query.question and not parsed.answer
    assert (parsed.edns == 0) is edns


@pytest.mark.parametrize("edns", [False, True])
def test_any_gets_the_rfc8482_hinfo(edns: bool) -> None:
    query = _query("ANY", edns)
    wire = query.to_wire()
    answer = any_answer(parse_query(wire), AnyMode.HINFO, 1232)
    assert answer is not None and len(answer) <= len(wire) + 21
    parsed = dns.message.from_wire(answer)
    (rrset,) = parsed.answer
    assert rrset.name == query.question[0].name and rrset.rdtype == dns.rdatatype.HINFO
    assert rrset[0].cpu == b"RFC8482" and rrset[0].os == b""
    assert parsed.rcode() == dns.rcode.NOERROR and not parsed.flags & dns.flags.TC


def test_any_refuse_and_forward() -> None:
    query = parse_query(_query("ANY", True).to_wire())
    refusal = any_answer(query, AnyMode.REFUSE, 1232)
    assert refusal == reply.minimal(query, 1232, REFUSED) and refusal is not None
    parsed = dns.message.from_wire(refusal)
    assert parsed.rcode() == dns.rcode.REFUSED and not parsed.options  # no EDE: a plain cap
    assert any_answer(query, AnyMode.FORWARD, 1232) is None


def test_config_section() -> None:
    assert ratelimit_config(None) == RateLimitConfig()
    cfg = ratelimit_config(
        {
            "ipv4": [{"prefix": 32, "rate": 50, "burst": 100}],
            "action": "drop",
            "slip": 0,
            "any": "refuse",
            "tcp": {"per_client": 5, "total": 500},
        }
    )
    assert cfg.ipv4 == (Limit(32, 50.0, 100.0),) and cfg.ipv6 == RateLimitConfig().ipv6
    assert cfg.action is LimitAction.DROP and cfg.any_mode is AnyMode.REFUSE
    assert (cfg.slip, cfg.tcp_per_client, cfg.tcp_total) == (0, 5, 500)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"ipv4": [{"prefix": 33, "rate": 1, "burst": 1}]},
            "x.yaml: ratelimit.ipv4[0]: prefix must be 1..32",
        ),
        ({"ipv6": [{"prefix": 64}]}, "x.yaml: ratelimit.ipv6[0]: expected prefix, rate and burst"),
        ({"ipv4": []}, "x.yaml: ratelimit.ipv4: expected a list"),
        ({"action": "tc"}, "x.yaml: ratelimit.action: expected 'truncate' or 'drop'"),
        ({"any": "no"}, "x.yaml: ratelimit.any: expected 'hinfo' or 'refuse' or 'forward'"),
        ({"slip": -1}, "x.yaml: ratelimit.slip: expected a number >= 0"),
        ({"tcp": {"total": 0}}, "x.yaml: ratelimit.tcp.total: expected an integer >= 1"),
        ({"burst": 5}, "x.yaml: ratelimit.burst: unknown key"),
    ],
)
def test_config_errors_name_file_and_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ratelimit_config(section, "x.yaml")
    assert caught.value.problems[0].startswith(message)
