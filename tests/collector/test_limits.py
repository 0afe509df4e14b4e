"""The push limiter's buckets and decisions, with the clock passed in (no sockets)."""

from __future__ import annotations

import pytest

from resolver.collector.limits import Buckets, PushGuard, Rate, address_key, parse_rate
from resolver.collector.proxy import forwarded, parse_networks
from resolver.errors import LachanError


def test_a_bucket_allows_its_burst_then_one_failure_per_period() -> None:
    buckets = Buckets(Rate(burst=3, seconds=10))
    for _ in range(3):
        assert buckets.wait("a", 0) == 0
        buckets.fail("a", 0)
    assert buckets.wait("a", 0) == 10
    assert buckets.wait("a", 4) == pytest.approx(6)
    assert buckets.wait("a", 10) == 0
    buckets.fail("a", 10)
    assert buckets.wait("a", 10) == 10 and buckets.wait("b", 10) == 0


def test_a_refilled_bucket_is_forgotten_and_the_table_never_outgrows_its_bound() -> None:
    buckets = Buckets(Rate(burst=2, seconds=1), max_keys=100)
    buckets.fail("a", 0)
    assert buckets.failed_recently("a", 0.5) and len(buckets) == 1
    assert not buckets.failed_recently("a", 1.0) and len(buckets) == 0
    for n in range(1000):
        buckets.fail(f"k{n}", 0)
    assert len(buckets) == 100
    assert buckets.failed_recently("k999", 0) and not buckets.failed_recently("k0", 0)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # one subscriber's prefix, one bucket
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        (None, "?"),
        ("not-an-address", "?"),
    ],
)
def test_source_addresses_map_to_buckets(address: str | None, key: str) -> None:
    assert address_key(address) == key


def test_an_address_out_of_failures_waits_and_is_counted_but_never_named() -> None:
    guard = PushGuard(Rate(burst=2, seconds=5))
    for _ in range(2):
        assert guard.check("192.0.2.1", "thpt-a", 0) == 0
        guard.failed("192.0.2.1", None, "unknown-site", 0)
    assert guard.check("192.0.2.1", "thpt-a", 0) == 5
    assert guard.check("192.0.2.2", "thpt-a", 0) == 0  # another address is not held back
    assert guard.failures == {"unknown-site": 2} and guard.throttled == {"address": 1}


def test_a_site_under_junk_holds_back_failing_addresses_but_not_clean_ones() -> None:
    guard = PushGuard(Rate(burst=2, seconds=60))  # a site: 12 failures, then one per 10 s
    for n in range(12):
        guard.failed(f"10.0.0.{n % 6}", "thpt-a", "unsigned", 0)  # six addresses, spent
    guard.failed("10.0.0.9", "thpt-b", "unsigned", 0)
    assert guard.check("10.0.0.7", "thpt-a", 0) == 0  # never failed: the school's own pusher
    guard.failed("10.0.0.8", None, "unknown-site", 0)  # one failure: a token is left to it
    assert guard.addresses.wait("10.0.0.8", 0) == 0
    assert guard.check("10.0.0.8", "thpt-a", 0) == 10  # but it failed lately, the site is spent
    assert guard.check("10.0.0.8", "thpt-b", 0) == 0  # thpt-b had one failure only
    assert guard.throttled == {"site": 1}


@pytest.mark.parametrize(
    ("text", "rate"), [("20/30", Rate(20, 30.0)), ("3/2s", Rate(3, 2.0)), ("1/0.5", Rate(1, 0.5))]
)
def test_failed_pushes_takes_n_per_seconds(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["20", "0/30", "x/30", "20/0", "20/-1", "/"])
def test_a_bad_failed_pushes_is_one_line_naming_the_flag(text: str) -> None:
    with pytest.raises(LachanError, match=rf"^--failed-pushes '{text}': expected N/SECONDS"):
        parse_rate(text)


NETS = parse_networks(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "headers", "seen"),
    [
        # A trusted proxy: its word on the scheme and the client is taken.
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}, ("127.0.0.1", True)),
        (
            "10.1.2.3",
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.5"},
            ("192.0.2.5", True),
        ),  # fmt: skip
        ("::ffff:127.0.0.1", {"X-Forwarded-Proto": "HTTPS"}, ("::ffff:127.0.0.1", True)),
        ("fd00::1", {"X-Forwarded-Proto": "http"}, ("fd00::1", False)),
        # The rightmost untrusted hop is the client; what it wrote to its left is not believed.
        ("127.0.0.1", {"X-Forwarded-For": "6.6.6.6, 192.0.2.5, 10.0.0.2"}, ("192.0.2.5", False)),
        ("127.0.0.1", {"X-Forwarded-Proto": "https, http"}, ("127.0.0.1", False)),
        # Anybody else: the headers count for nothing.
        (
            "192.0.2.9",
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.1"},
            ("192.0.2.9", False),
        ),  # fmt: skip
        (None, {"X-Forwarded-Proto": "https"}, (None, False)),
    ],
)
def test_forwarded_headers_count_only_from_trusted_proxies(
    peer: str | None, headers: dict[str, str], seen: tuple[str | None, bool]
) -> None:
    assert forwarded(peer, headers, NETS) == seen


def test_no_trusted_proxy_means_no_forwarded_header_is_read() -> None:
    assert forwarded("127.0.0.1", {"X-Forwarded-Proto": "https"}, ()) == ("127.0.0.1", False)


def test_a_bad_trusted_proxy_is_one_line_naming_the_flag() -> None:
    with pytest.raises(LachanError, match=r"^--trusted-proxy '10.0.0.0/33': not an IP address"):
        parse_networks(["10.0.0.0/33"])


def test_the_collectors_metrics_pass_promtool_and_name_no_address_or_site() -> None:
    import subprocess

    from resolver.collector.metrics import exposition
    from tests.tools import require

    guard = PushGuard(Rate(burst=1, seconds=60))
    guard.failed("192.0.2.1", "thpt-a", "unsigned", 0)
    assert guard.check("192.0.2.1", "thpt-a", 0) == 60
    text = exposition(guard).decode()
    run = subprocess.run([require("promtool"), "check", "metrics"], input=text,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 0 and not (run.stdout + run.stderr).strip(), run.stdout + run.stderr
    assert 'lachan_collector_push_failures_total{kind="unsigned"} 1.0' in text
    assert 'lachan_collector_push_throttled_total{limit="address"} 1.0' in text
    assert "192.0.2.1" not in text and "thpt-a" not in text
