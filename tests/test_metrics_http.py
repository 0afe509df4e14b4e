"""Tests for resolver.metrics_http, including a real Prometheus scraping the endpoint."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prom_server import PrometheusServer
from prometheus_client import CollectorRegistry

from resolver import metrics
from resolver.errors import ConfigError
from resolver.metrics_http import MAX_CLIENTS, MetricsAddress, MetricsServer, parse_address
from resolver.stats import TCP, UDP, LabelSets, Stats

LABELS = LabelSets(
    categories=frozenset({"adult", "gambling"}),
    profiles=frozenset({"school", "under16"}),
    upstreams=frozenset({"127.0.0.1:5353"}),
    sources=frozenset({"ut1-adult"}),
)
SITE = metrics.SiteLabels("hn-thcs-01", "school")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def make_server(stats: Stats, host: str = "127.0.0.1") -> MetricsServer:
    registry = CollectorRegistry()
    metrics.register(registry, stats.snapshot, SITE, version="0.1.0", started_at=1.0)
    return MetricsServer(registry, MetricsAddress(host, 0))


@pytest.fixture
def served() -> Iterator[tuple[Stats, str]]:
    stats = Stats(LABELS)
    server = make_server(stats)
    addr = server.start()
    try:
        yield stats, f"http://{addr.host}:{addr.port}"
    finally:
        server.stop()


def get(url: str, accept: str = "") -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:9153", "127.0.0.1", 9153), ("[::1]:9153", "::1", 9153),
     (":9100", "0.0.0.0", 9100), ("[::]:0", "::", 0)],
)  # fmt: skip
def test_parse_address(text: str, host: str, port: int) -> None:
    assert parse_address(text) == MetricsAddress(host, port)


@pytest.mark.parametrize("text", ["9153", "localhost", "127.0.0.1:http", "1.2.3.4:70000", ""])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="metrics.listen"):
        parse_address(text)


def test_default_address_is_loopback_9153() -> None:
    assert MetricsAddress() == MetricsAddress("127.0.0.1", 9153)


def test_serves_metrics_in_text_format(served: tuple[Stats, str]) -> None:
    stats, url = served
    stats.record_query(UDP, 1)
    status, ctype, body = get(url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert (
        'lachan_queries_total{qtype="a",site="hn-thcs-01",site_kind="school",transport="udp"} 1.0'
        in body
    )


def test_serves_openmetrics_when_asked(served: tuple[Stats, str]) -> None:
    _, url = served
    status, ctype, body = get(url + "/metrics", accept="application/openmetrics-text")
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_each_scrape_reads_current_counters(served: tuple[Stats, str]) -> None:
    stats, url = served
    stats.record_query(TCP, 28)
    assert (
        'qtype="aaaa",site="hn-thcs-01",site_kind="school",transport="tcp"} 1.0'
        in get(url + "/metrics")[2]
    )
    stats.record_query(TCP, 28)
    assert (
        'qtype="aaaa",site="hn-thcs-01",site_kind="school",transport="tcp"} 2.0'
        in get(url + "/metrics")[2]
    )


def test_unknown_path_is_404(served: tuple[Stats, str]) -> None:
    _, url = served
    assert get(url + "/admin")[0] == 404


def test_the_root_path_is_404_too_the_listener_serves_metrics_only(
    served: tuple[Stats, str],
) -> None:
    _, url = served
    assert get(url + "/")[0] == 404


@pytest.mark.skipif(not ipv6_loopback(), reason="platform: no IPv6 loopback")
def test_serves_on_ipv6_loopback() -> None:
    server = make_server(Stats(LABELS), host="::1")
    addr = server.start()
    try:
        status, _, body = get(f"http://[::1]:{addr.port}/metrics")
        assert status == 200 and "lachan_build_info" in body
    finally:
        server.stop()


def test_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        registry = CollectorRegistry()
        server = MetricsServer(registry, MetricsAddress("127.0.0.1", port))
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.start()


def test_stop_closes_the_socket_and_is_idempotent() -> None:
    server = make_server(Stats(LABELS))
    port = server.start().port
    server.stop()
    server.stop()
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/metrics")


def drive(stats: Stats, allowed: int, blocked: int, rewritten: int) -> None:
    """What the resolver core does per query, for a known mix of answers."""
    for i in range(allowed + blocked + rewritten):
        stats.record_query(UDP, 1)
        if i < allowed:
            stats.record_answer(UDP, "allowed", "none", "school", 0.0004)
        elif i < allowed + blocked:
            stats.record_answer(UDP, "blocked", "adult", "school", 0.00003)
        else:
            stats.record_rewrite("youtube")
            stats.record_answer(UDP, "rewritten", "none", "school", 0.02)


def test_real_prometheus_scrapes_known_counts(tmp_path: Path) -> None:
    stats = Stats(LABELS)
    server = make_server(stats)
    addr = server.start()
    rules = Path(__file__).parent.parent / "systemd/prometheus/lachan-alerts.yml"
    try:
        with PrometheusServer(tmp_path, [f"127.0.0.1:{addr.port}"], [rules]) as prom:
            prom.wait_for('up{job="lachan"}', lambda v: v == 1.0)
            drive(stats, allowed=7, blocked=5, rewritten=3)
            answers = 'sum by (action) (lachan_answers_total{site="hn-thcs-01"})'
            rewritten = 'sum(lachan_answers_total{action="rewritten"})'
            prom.wait_for(rewritten, lambda v: v == 3.0)
            got = {r["metric"]["action"]: float(r["value"][1]) for r in prom.query(answers)}
            assert got == {"allowed": 7.0, "blocked": 5.0, "rewritten": 3.0}
            assert prom.scalar("sum(lachan_queries_total)") == 15.0
            assert prom.scalar('lachan_safesearch_rewrites_total{engine="youtube"}') == 3.0
            assert prom.scalar("sum(lachan_request_duration_seconds_count)") == 15.0
            le = 'lachan_request_duration_seconds_bucket{transport="udp",le="5e-05"}'
            assert prom.scalar(le) == 5.0  # the five blocks answered in 30 µs
            drive(stats, allowed=0, blocked=2, rewritten=0)
            prom.wait_for('sum(lachan_answers_total{action="blocked"})', lambda v: v == 7.0)
            groups = prom.api("rules")["groups"]
            assert groups and all(r["health"] != "err" for g in groups for r in g["rules"])
    finally:
        server.stop()


def test_a_scrape_answers_within_a_second_while_idle_connections_are_held_open(
    served: tuple[Stats, str],
) -> None:
    # Issue 12: three idle TCP connections made a scrape wait 3 x 5 s behind them.
    _, url = served
    host, port = url.removeprefix("http://").rsplit(":", 1)
    idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(3)]
    try:
        req = urllib.request.Request(url + "/metrics")
        started = time.monotonic()
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
            assert b"lachan_build_info" in r.read()
        assert time.monotonic() - started < 1.0
    finally:
        for s in idle:
            s.close()


def test_connections_past_the_cap_are_closed_without_stopping_the_server(
    served: tuple[Stats, str],
) -> None:
    _, url = served
    host, port = url.removeprefix("http://").rsplit(":", 1)
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(MAX_CLIENTS + 5)]
    try:
        # The extra ones are closed by the server at once: a read returns EOF, not a timeout.
        closed = 0
        for s in held[MAX_CLIENTS:]:
            s.settimeout(15)  # the server accepts them in order, however busy the machine
            if s.recv(1) == b"":
                closed += 1
        assert closed == 5
    finally:
        for s in held:
            s.close()
    status, _, body = get(url + "/metrics")
    assert status == 200 and "lachan_build_info" in body
