"""ISP subscriber mode end to end: real redis-server, radclient, two ``lachan serve`` hosts.

A line opts in with ``lachan subscribers set``; FreeRADIUS's radclient sends the access
network's accounting to host A; both hosts answer the bound address under ``under16`` within
1 s, and under ``isp-default`` again after the Stop. Forged or foreign accounting changes
nothing. Subscriber IDs and addresses never reach metrics or the default logs.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.e2e_helpers import InternetStub, ask, try_ask
from tests.integration.subscriber_helpers import (
    CASINO,
    IspPair,
    blocked,
    canary_text,
    profile_seen,
    start_pair,
    unlisted_nas_start,
    until_profile,
)

LINE = "hanoi-line-0042"
HOME, NEIGHBOUR = "127.0.0.5", "127.0.0.6"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[IspPair]:
    with InternetStub() as internet:
        started = start_pair(tmp_path, internet.address)
        yield started
        started.stop()


def start(pair: IspPair, address: str = HOME, status: str = "Start") -> str:
    done = pair.radclient(
        f"User-Name={LINE},Acct-Status-Type={status},Framed-IP-Address={address},"
        "Acct-Session-Id=s1,NAS-IP-Address=127.0.0.1"
    )
    return done.stdout + done.stderr


def test_an_opted_in_line_is_under16_on_both_hosts_until_its_session_stops(
    pair: IspPair,
) -> None:
    for host in (pair.a, pair.b):
        assert profile_seen(host, HOME) == "isp-default"
        assert not blocked(ask(host.port, CASINO, source=HOME))
    assert pair.subscribers("set", LINE, "under16").returncode == 0
    assert "Received Accounting-Response" in start(pair)
    for host in (pair.a, pair.b):
        assert until_profile(host, HOME, "under16", 1.0) < 1.0
        assert blocked(ask(host.port, CASINO, source=HOME))
        google = ask(host.port, "www.google.com", source=HOME)
        assert "forcesafesearch.google.com." in google.to_text()
        assert "216.239.38.120" in google.to_text()
        assert profile_seen(host, NEIGHBOUR) == "isp-default"
        assert LINE not in canary_text(host, HOME)
    assert "Received Accounting-Response" in start(pair, status="Stop")
    for host in (pair.a, pair.b):
        assert until_profile(host, HOME, "isp-default", 1.0) < 1.0
        assert not blocked(ask(host.port, CASINO, source=HOME))


def test_a_delegated_ipv6_prefix_covers_the_addresses_inside_it(pair: IspPair) -> None:
    assert pair.subscribers("set", LINE, "under16").returncode == 0
    for host in (pair.a, pair.b):
        assert profile_seen(host, "::1") == "isp-default"  # and its state is now cached
    done = pair.radclient(
        f"User-Name={LINE},Acct-Status-Type=Start,Delegated-IPv6-Prefix=::/64,"
        "Framed-IPv6-Prefix=2001:db8:1::/64"
    )
    assert "Received Accounting-Response" in done.stdout + done.stderr
    for host in (pair.a, pair.b):
        assert until_profile(host, "::1", "under16", 1.0) < 1.0
        assert blocked(ask(host.port, CASINO, source="::1"))
        assert profile_seen(host, HOME) == "isp-default"
    assert "::/64 since" in pair.subscribers("where", "::1").stdout


def test_with_workers_the_supervisor_takes_accounting_and_every_worker_follows(
    tmp_path: Path,
) -> None:
    with InternetStub() as internet:
        pair = start_pair(tmp_path, internet.address, workers=2)
        try:
            assert pair.subscribers("set", LINE, "under16").returncode == 0
            assert "Received Accounting-Response" in start(pair)
            time.sleep(1.0)
            # Each query from a new source port: SO_REUSEPORT spreads them over the workers.
            seen = {profile_seen(host, HOME) for host in (pair.a, pair.b) for _ in range(24)}
            assert seen == {"under16"}
            assert (
                'lachan_radius_requests_total{result="ok",site="isp-test",site_kind="isp"} 1.0'
                in pair.metrics()
            )
        finally:
            pair.stop()


def test_forged_or_foreign_accounting_changes_nothing_and_is_counted(pair: IspPair) -> None:
    assert pair.subscribers("set", LINE, "under16").returncode == 0
    forged = pair.radclient(
        f"User-Name={LINE},Acct-Status-Type=Start,Framed-IP-Address={HOME}", secret="guessed"
    )
    assert "Received Accounting-Response" not in forged.stdout + forged.stderr
    assert unlisted_nas_start(pair.radius_port, HOME) is None
    time.sleep(1.0)  # what would have propagated by now
    for host in (pair.a, pair.b):
        assert profile_seen(host, HOME) == "isp-default"
    text = pair.metrics()
    assert (
        'lachan_radius_requests_total{result="bad_authenticator",site="isp-test",site_kind="isp"} 1.0'
        in text
    )
    assert (
        'lachan_radius_requests_total{result="unknown_nas",site="isp-test",site_kind="isp"} 1.0'
        in text
    )
    assert 'lachan_subscriber_bindings{site="isp-test",site_kind="isp"} 0.0' in text


def test_metrics_ledger_and_logs_count_subscribers_and_never_name_them(pair: IspPair) -> None:
    assert pair.subscribers("set", LINE, "under16").returncode == 0
    start(pair)
    until_profile(pair.a, HOME, "under16", 1.0)
    text = pair.metrics()
    assert 'lachan_subscribers{profile="under16",site="isp-test",site_kind="isp"} 1.0' in text
    assert 'lachan_subscriber_bindings{site="isp-test",site_kind="isp"} 1.0' in text
    assert 'lachan_radius_requests_total{result="ok",site="isp-test",site_kind="isp"} 1.0' in text
    assert 'lachan_subscriber_store_up{site="isp-test",site_kind="isp"} 1.0' in text
    lint = subprocess.run(
        ["/usr/bin/promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert "subscriber" not in lint.stdout + lint.stderr and "radius" not in lint.stdout
    for host in (pair.a, pair.b):
        ask(host.port, CASINO, source=HOME)  # something for the ledger to count
    pair.a.stop()  # records the open audit period
    ledger = pair.ledger_a.read_text(encoding="utf-8")
    assert '"under16"' in ledger  # it did count the line's answers, by profile
    for secret in (LINE, HOME):
        assert secret not in text and secret not in ledger
        assert secret not in pair.a.stderr() and secret not in pair.b.stderr()


def test_redis_killed_and_restarted_while_queries_flow(pair: IspPair) -> None:
    assert pair.subscribers("set", LINE, "under16").returncode == 0
    start(pair)
    until_profile(pair.b, HOME, "under16", 1.0)
    wrong: list[str] = []
    lost: list[str] = []
    stop = threading.Event()

    def load() -> None:
        for i in range(600):  # bounded: at most 600 pairs of queries
            if stop.is_set():
                return
            for host in (pair.a, pair.b):
                home = try_ask(host.port, f"{i}.{CASINO}", source=HOME, timeout=2.0)
                near = try_ask(host.port, f"{i}.{CASINO}", source=NEIGHBOUR, timeout=2.0)
                if home is None or near is None:
                    lost.append(f"{i}")
                elif not blocked(home) or blocked(near):
                    wrong.append(f"{i}")
            time.sleep(0.01)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(0.5)
        pair.redis.kill()
        _wait(
            lambda: (
                'lachan_subscriber_store_up{site="isp-test",site_kind="isp"} 0.0' in pair.metrics()
            ),
            5.0,
        )
        time.sleep(1.0)  # queries keep flowing against the last replica
        pair.redis.start()
        _wait(
            lambda: (
                'lachan_subscriber_store_up{site="isp-test",site_kind="isp"} 1.0' in pair.metrics()
            ),
            15.0,
        )
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not lost and not wrong, f"lost {lost[:5]}, wrong profile {wrong[:5]}"
    assert "Received Accounting-Response" in start(pair, status="Stop")
    for host in (pair.a, pair.b):  # the replicas follow the store again
        until_profile(host, HOME, "isp-default", 1.0)
    for host in (pair.a, pair.b):
        outage = re.findall(r"subscriber store unreachable", host.stderr())
        assert len(outage) == 1, host.stderr()  # logged once per outage, not per retry


def _wait(check, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_an_open_tcp_connection_follows_a_new_binding(pair: IspPair) -> None:
    # A connection keeps its ClientState between queries: a binding made while it is open
    # must reach it too (dnsdist and phones keep connections for minutes).
    import socket

    import dns.message
    import dns.query

    def profile_over(sock: socket.socket) -> str:
        query = dns.message.make_query("status.lachan.arpa", "TXT")
        reply = dns.query.tcp(query, "127.0.0.1", port=pair.a.port, sock=sock, timeout=3)
        found = re.search(r"profile=([\w-]+)", reply.to_text())
        assert found is not None, reply.to_text()
        return found.group(1)

    with socket.create_connection(("127.0.0.1", pair.a.port), timeout=3,
                                  source_address=(HOME, 0)) as sock:  # fmt: skip
        assert profile_over(sock) == "isp-default"
        assert pair.subscribers("set", LINE, "under16").returncode == 0
        assert "Received Accounting-Response" in start(pair)
        until_profile(pair.a, HOME, "under16", 1.0)
        assert profile_over(sock) == "under16"
