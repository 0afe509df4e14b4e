"""End to end, as an operator sees it: a real Prometheus scrapes a real ``lachan serve`` through
a scripted day (hit, miss, block, safe search, a refused client, a rate-limited client, an
upstream that times out, list refreshes by ``lachan lists update`` as the shipped timer runs
it, a rejected reload, and a SIGHUP that changes ``site.id``).

Then: every metric family lachan exports has a sample and moved as the scenario says it must;
every series carries the new site label; every query of the shipped Grafana dashboard and
every shipped alert expression returns data; and the two alerts the scenario stages live
(ListRefreshFailing, ConfigReloadFailed) fire in this Prometheus. Every alert firing when
staged is checked by promtool's rule unit tests (tests/test_metrics.py).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import pytest
import yaml
from e2e_helpers import INTERNET_V4, InternetStub, addresses, ask, cnames, rcode, try_ask

from resolver import metrics
from tests.integration.ops_helpers import free_port, start_lachan, wait_until
from tests.prom_server import PrometheusServer
from tests.stub_upstream import ROOT, LachanProcess, lachan_command

PREFETCHED = "prefetch.ttl20.example.test"  # the stub answers *.ttl<N>.example.test with TTL N
ALERTS = ROOT / "systemd/prometheus/lachan-alerts.yml"
DASHBOARD = ROOT / "systemd/grafana/lachan-dashboard.json"
BEFORE, AFTER = "e2e-prom-before", "e2e-prom-after"
SOURCES = {"hit": "127.0.0.11", "miss": "127.0.0.12", "block": "127.0.0.13", "safe": "127.0.0.14",
           "refused": "127.0.0.66", "limited": "127.0.0.15", "tcp": "127.0.0.16",
           "upstream": "127.0.0.17", "after": "127.0.0.18"}  # fmt: skip


@dataclass
class Run:
    """What the scenario left behind for the assertions."""

    prom: PrometheusServer
    process: LachanProcess
    upstream: str
    started: float
    baseline: dict[str, float] = field(default_factory=dict)  # family -> summed value at start
    fired: dict[str, float] = field(default_factory=dict)  # alert -> time it was seen firing


def _catalogue(work: Path, base_url: str) -> Path:
    """The shipped categories with tiny sources: one bundled file and two downloaded ones,
    one served (local-good) and one whose server refuses connections (local-bad)."""
    shipped = yaml.safe_load((ROOT / "blocklists/catalogue.yaml").read_text())
    (work / "tiny-adult.txt").write_text("bundled-adult.example\n")
    for category in shipped["categories"]:
        category["sources"] = []
        if category["id"] == "adult":
            category["sources"] = [
                {"id": "tiny-adult", "format": "domains", "bundled": str(work / "tiny-adult.txt"),
                 "licence": "CC0-1.0", "refresh": "1h"},
                {"id": "local-good", "format": "domains", "url": f"{base_url}/adult.txt",
                 "licence": "CC0-1.0", "refresh": "1s"},
                {"id": "local-bad", "format": "domains", "licence": "CC0-1.0", "refresh": "1s",
                 "url": f"http://127.0.0.1:{free_port(('127.0.0.1',))}/gone.txt"},
            ]  # fmt: skip
    shipped["protected"] = str(ROOT / "blocklists" / shipped["protected"])
    path = work / "catalogue.yaml"
    path.write_text(yaml.safe_dump(shipped))
    return path


def _config(site: str, catalogue: Path, state: Path, metrics_port: int) -> str:
    return f"""
site: {{id: {site}, kind: school}}
lists: {{catalogue: "{catalogue}", state_dir: "{state}", refresh_interval: 0}}
metrics: {{listen: "127.0.0.1:{metrics_port}"}}
cache: {{size: 3}}
upstream: {{timeout: 0.3}}
acl: {{deny: ["{SOURCES["refused"]}/32"]}}
ratelimit:
  ipv4: [{{prefix: 32, rate: 2, burst: 4}}]
  action: drop
  tcp: {{per_client: 1, total: 100}}
"""


def _lists_update(config: Path) -> str:
    done = subprocess.run(
        [*lachan_command(), "lists", "update", "--config", str(config),
         "--source", "local-good", "--source", "local-bad"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert "local-bad" in done.stdout + done.stderr, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    served = tmp_path_factory.mktemp("www")
    (served / "adult.txt").write_text("fresh-adult.example\nother-adult.example\n")
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def family_sum(prom: PrometheusServer, family: str, where: str = "") -> float | None:
    """The sum of a family's samples (a histogram by its _count), None if it has none."""
    name = f"{family}_count" if _kind(family) == "histogram" else family
    return prom.scalar(f"sum({name}{where})")


def _kind(family: str) -> str:
    return next((m.kind for m in metrics.METRICS if m.name == family), "gauge")


def exported_families() -> list[str]:
    return [m.name for m in metrics.METRICS] + ["lachan_build_info", "lachan_start_time_seconds"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, www: tuple[Path, str]) -> Iterator[Run]:
    served, base_url = www
    work = tmp_path_factory.mktemp("e2e-prom")
    catalogue, state = _catalogue(work, base_url), work / "state"
    metrics_port = free_port(("127.0.0.1",))
    config = work / "lachan.yaml"
    config.write_text(_config(BEFORE, catalogue, state, metrics_port))
    _lists_update(config)  # the timer ran once before lachan started: local-bad failed once
    started = time.time()
    with InternetStub() as stub:
        process = start_lachan(work, stub.address, config.read_text())
        config = Path(process.args[process.args.index("--config") + 1])  # what SIGHUP re-reads
        (work / "prom").mkdir()
        try:
            with PrometheusServer(work / "prom", [f"127.0.0.1:{metrics_port}"], [ALERTS]) as prom:
                yield _scenario(Run(prom, process, stub.address, started), stub, served, config)
        finally:
            process.stop()


def _scenario(run: Run, stub: InternetStub, served: Path, config: Path) -> Run:
    prom, port = run.prom, run.process.port
    prom.wait_for('lachan_list_refresh_failures_total{source="local-bad"}', lambda v: v == 1.0)
    run.baseline = {f: v for f in exported_families() if (v := family_sum(prom, f)) is not None}

    # The timer refreshes three more times; local-good changed, local-bad still refuses.
    (served / "adult.txt").write_text("fresh-adult.example\nother-adult.example\nfresher.example\n")
    for _ in range(3):
        _lists_update(config)

    _queries(run, stub)
    asked_at = time.monotonic()  # last: no miss may evict it from the small cache until then
    ask(run.process.port, PREFETCHED, source=SOURCES["hit"])  # cached for 20 s

    # lachan reads the lists' records every 30 s: then the failures reach 4 (an increase of
    # 3 since the first scrape) and LachanListRefreshFailing fires.
    prom.wait_for('lachan_list_refresh_failures_total{source="local-bad"}', lambda v: v == 4.0, 45)
    run.fired["LachanListRefreshFailing"] = _wait_firing(prom, "LachanListRefreshFailing")
    # A hit in the last tenth of the TTL (18-20 s): with cache.prefetch it refreshes the entry.
    time.sleep(max(0.0, asked_at + 18.5 - time.monotonic()))
    assert addresses(ask(port, PREFETCHED, source=SOURCES["hit"])) == ["192.0.2.10"]

    # A reload with a broken config is rejected (and alerted); the next one applies.
    text = config.read_text()
    config.write_text(text.replace(f"id: {BEFORE}", "id: [not, a, string]"))
    run.process.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    prom.wait_for("sum(lachan_config_reload_failures_total)", lambda v: v == 1.0)
    run.fired["LachanConfigReloadFailed"] = _wait_firing(prom, "LachanConfigReloadFailed")
    config.write_text(text.replace(f"id: {BEFORE}", f"id: {AFTER}"))
    run.process.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    prom.wait_for(f'sum(lachan_config_reloads_total{{site="{AFTER}"}})', lambda v: v == 2.0)

    # After the reload: the refreshed list is in force, and traffic goes on.
    assert rcode(ask(port, "fresher.example", source=SOURCES["after"])) == "NXDOMAIN"
    assert addresses(ask(port, "after.e2e-prom.example", source=SOURCES["after"])) == [INTERNET_V4]
    prom.wait_for(f'sum(lachan_queries_total{{site="{AFTER}"}})', lambda v: v is not None)
    time.sleep(3)  # a few scrapes under the new label, so rates over them have two samples
    return run


def _queries(run: Run, stub: InternetStub) -> None:
    port = run.process.port
    # hit: the second identical question is answered from the cache
    for _ in range(2):
        reply = ask(port, "hit.e2e-prom.example", source=SOURCES["hit"])
        assert addresses(reply) == [INTERNET_V4]
    # misses: more names than the cache holds (size 3), so some are evicted
    for i in range(4):
        assert addresses(ask(port, f"miss{i}.e2e-prom.example", source=SOURCES["miss"]))
    assert rcode(ask(port, "bundled-adult.example", source=SOURCES["block"])) == "NXDOMAIN"
    assert rcode(ask(port, "fresh-adult.example", source=SOURCES["block"])) == "NXDOMAIN"
    assert cnames(ask(port, "www.google.com", source=SOURCES["safe"]))
    assert rcode(ask(port, "use-application-dns.net", source=SOURCES["safe"])) == "NXDOMAIN"
    # refused client: REFUSED over UDP, its TCP connection closed at accept
    assert rcode(ask(port, "kid.e2e-prom.example", source=SOURCES["refused"])) == "REFUSED"
    assert _tcp_closed_at_once(port, SOURCES["refused"])
    # rate-limited client: 12 questions at once against a burst of 4
    assert _udp_burst(port, SOURCES["limited"], 12) <= 6
    # TCP: one connection per client; a second one is closed at accept
    with socket.create_connection(("127.0.0.1", port), source_address=(SOURCES["tcp"], 0)):
        assert _tcp_closed_at_once(port, SOURCES["tcp"])
    # an upstream that times out, then one whose replies answer another question
    stub.mode = "drop"
    assert rcode(ask(port, "dead.e2e-prom.example", source=SOURCES["upstream"])) == "SERVFAIL"
    stub.mode = "wrong_question"
    assert rcode(ask(port, "spoof.e2e-prom.example", source=SOURCES["upstream"])) == "SERVFAIL"
    stub.mode = "normal"
    assert wait_until(lambda: _answered(port, "back.e2e-prom.example"), 15, 1.0)


def _answered(port: int, name: str) -> bool:
    """The upstream answers again (it is marked down for a few seconds after failures)."""
    reply = try_ask(port, name, source=SOURCES["upstream"], timeout=1)
    return reply is not None and rcode(reply) == "NOERROR"


def _tcp_closed_at_once(port: int, source: str) -> bool:
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) as s:
        s.settimeout(3)
        query = dns.message.make_query("tcp.e2e-prom.example", "A").to_wire()
        try:
            s.sendall(len(query).to_bytes(2, "big") + query)
            return s.recv(2) == b""
        except ConnectionError:
            return True


def _udp_burst(port: int, source: str, count: int) -> int:
    """Send ``count`` distinct questions at once; how many were answered within a second."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        for i in range(count):
            s.sendto(dns.message.make_query(f"l{i}.e2e-prom.example", "A").to_wire(),
                     ("127.0.0.1", port))  # fmt: skip
        s.settimeout(1.0)
        answered = 0
        try:
            while True:
                s.recv(4096)
                answered += 1
        except TimeoutError:
            return answered


def _wait_firing(prom: PrometheusServer, alert: str) -> float:
    expr = f'count(ALERTS{{alertname="{alert}",alertstate="firing"}})'
    prom.wait_for(expr, lambda v: v is not None and v >= 1, 20)
    return time.time()


# -- the assertions ----------------------------------------------------------------------------
def test_every_family_has_a_sample_under_the_new_site_label(run: Run) -> None:
    missing = [
        f for f in exported_families() if family_sum(run.prom, f, f'{{site="{AFTER}"}}') is None
    ]
    assert not missing, missing
    stale = run.prom.query(f'count by (__name__) ({{__name__=~"lachan_.+", site!="{AFTER}"}})')
    assert not stale, stale
    kinds = run.prom.query('count by (site_kind) ({__name__=~"lachan_.+"})')
    assert [r["metric"]["site_kind"] for r in kinds] == ["school"]


# family -> how it must compare with its value at the first scrape (None: it had no sample)
GREW = ("lachan_queries_total", "lachan_answers_total", "lachan_safesearch_rewrites_total",
        "lachan_bypass_attempts_total", "lachan_request_duration_seconds",
        "lachan_cache_hits_total", "lachan_cache_misses_total", "lachan_cache_evictions_total",
        "lachan_upstream_queries_total", "lachan_upstream_failures_total",
        "lachan_upstream_duration_seconds", "lachan_upstream_mismatched_total",
        "lachan_list_last_success_timestamp_seconds", "lachan_list_refresh_failures_total",
        "lachan_config_reloads_total", "lachan_config_reload_failures_total",
        "lachan_config_last_reload_success_timestamp_seconds",
        "lachan_index_built_timestamp_seconds", "lachan_index_entries",
        "lachan_tcp_refused_total", "lachan_prefetch_total")  # fmt: skip
# single process: no worker to restart, and no encrypted listener (0 by definition)
# and no console: its connection limits closed nothing (counted from 0 all the same)
EXACT = {"lachan_worker_restarts_total": 0.0, "lachan_workers": 1.0,
         "lachan_tls_certificate_expiry_seconds": 0.0, "lachan_build_info": 1.0,
         "lachan_console_refused_total": 0.0}  # fmt: skip
POSITIVE = ("lachan_cache_entries", "lachan_cache_bytes")


def test_every_family_moved_as_the_scenario_says(run: Run) -> None:
    families = set(exported_families())
    expected = set(GREW) | set(EXACT) | set(POSITIVE) | {"lachan_start_time_seconds"}
    assert families <= expected, f"a new family needs its expectation here: {families - expected}"
    now = {f: family_sum(run.prom, f) for f in exported_families()}
    still = [f for f in GREW if f in families and not (now[f] or 0) > run.baseline.get(f, 0.0)]
    assert not still, {f: (run.baseline.get(f), now[f]) for f in still}
    assert {f: now[f] for f in EXACT} == EXACT
    assert all((now[f] or 0) > 0 for f in POSITIVE), {f: now[f] for f in POSITIVE}
    assert run.started - 5 < (now["lachan_start_time_seconds"] or 0) < time.time()


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ('sum(lachan_answers_total{action="allowed"})', None),
        ('sum(lachan_answers_total{action="blocked",category="adult"})', 3.0),
        ('sum(lachan_answers_total{action="rewritten"})', 1.0),
        ('sum(lachan_answers_total{action="refused"})', 1.0),
        ('sum(lachan_answers_total{action="ratelimited"})', None),
        ('sum(lachan_answers_total{action="servfail"})', None),
        ('sum(lachan_safesearch_rewrites_total{engine="google"})', 1.0),
        ('sum(lachan_bypass_attempts_total{kind="canary"})', 1.0),
        ("sum(lachan_cache_hits_total)", None),
        ('sum(lachan_upstream_failures_total{reason="timeout"})', None),
        ("sum(lachan_upstream_mismatched_total)", None),
        ('sum(lachan_tcp_refused_total{reason="acl"})', 1.0),
        ('sum(lachan_tcp_refused_total{reason="per_client"})', 1.0),
        ('lachan_index_entries{source="local-good"}', 3.0),
        ('lachan_index_entries{source="tiny-adult"}', 1.0),
        ('lachan_list_refresh_failures_total{source="local-bad"}', 4.0),
        ("sum(lachan_config_reloads_total)", 2.0),
        ("sum(lachan_config_reload_failures_total)", 1.0),
    ],
)
def test_each_step_of_the_scenario_is_counted_where_it_belongs(
    run: Run, expr: str, value: float | None
) -> None:
    found = run.prom.scalar(expr)
    assert found is not None and found > 0, expr
    if value is not None:
        assert found == value, (expr, found)


def test_the_list_refresh_by_the_timer_is_fresh(run: Run) -> None:
    expr = 'lachan_list_last_success_timestamp_seconds{source="local-good"}'
    assert (run.prom.scalar(expr) or 0) > run.started


def _panel_queries() -> list[tuple[str, str]]:
    def panels(items: list[dict]) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def _grafana(expr: str) -> str:
    """The query as Grafana sends it: variables replaced by what the dashboard would pick."""
    for variable, value in (("$__rate_interval", "30s"), ("$__range", "10m"), ("$site", ".*")):
        expr = expr.replace(variable, value)
    return expr


def test_every_dashboard_query_returns_data(run: Run) -> None:
    empty = [
        (title, expr) for title, expr in _panel_queries() if not run.prom.query(_grafana(expr))
    ]
    assert not empty, empty
    assert len(_panel_queries()) >= 28


# The comparison that turns an alert's measure into a condition: `> 0.5`, `== 0`,
# `< 14 * 86400`, `> 2 * 86400` ...
THRESHOLD = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.]+(\s*\*\s*[0-9.]+)?")


def test_every_alert_measures_something(run: Run) -> None:
    """Each alert's expression, without its threshold, returns data: an alert whose metrics
    have no sample could never fire, whatever happened. (Alerts on the metrics of a mode this
    server does not run, such as ISP subscriber mode, are left to their own tests.)"""
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    core = [
        r for r in rules if set(re.findall(r"\blachan_\w+", r["expr"])) <= metrics.exposed_names()
    ]
    assert len(core) >= 9
    empty = [r["alert"] for r in core if not run.prom.query(THRESHOLD.sub("", r["expr"]))]
    assert not empty, empty


def test_staged_alerts_fired_in_prometheus(run: Run) -> None:
    assert set(run.fired) == {"LachanListRefreshFailing", "LachanConfigReloadFailed"}
    firing = run.prom.api("query", query='ALERTS{alertstate="firing"}',
                          time=str(run.fired["LachanListRefreshFailing"]))["result"]  # fmt: skip
    refresh = [
        a["metric"] for a in firing if a["metric"]["alertname"] == "LachanListRefreshFailing"
    ]
    assert [(m["source"], m["site"]) for m in refresh] == [("local-bad", BEFORE)]


def test_a_failing_upstream_is_logged_with_its_reason(run: Run) -> None:
    lines = [line for line in run.process.stderr().splitlines() if "failing:" in line]
    assert lines and all(run.upstream in line for line in lines), lines
    assert "timeout" in lines[0]
    assert len(lines) <= 2  # at most once a minute per upstream
