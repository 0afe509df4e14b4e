"""Reload under load (issue 6): dnsperf runs while the test sends 10 SIGHUPs, some invalid.

No query may be lost beyond what an idle, reload-free run of the same load loses; invalid
reloads are refused and counted; valid ones switch the answers to the new policy.
One process, and a supervisor with two SO_REUSEPORT workers.
"""

from __future__ import annotations

import math
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.integration.ops_helpers import (
    PerfResult,
    ask,
    config_path,
    copy_policies,
    finish_dnsperf,
    free_port,
    metric,
    run_dnsperf,
    signal_process,
    start_dnsperf,
    start_lachan,
    wait_until,
    write_perf_data,
)
from tests.stub_upstream import LachanProcess, StubUpstream
from tests.tools import require


@pytest.fixture(autouse=True, scope="module")
def _dnsperf() -> None:
    require("dnsperf")  # fails every test here naming the package, never skips


QPS = 5000  # well inside one process's capacity, so loss would come from reloads
LOAD_SECONDS = 20
BASELINE_SECONDS = 5
RELOADS = "VIVIVIVIVV"  # V = valid (toggles a deny override), I = invalid config in place
SWITCH = "switch.example.test"  # answered normally until a valid reload denies it

CONFIG = """\
site: {{id: ops-reload, kind: school}}
policies: {{dir: {policies}}}
clients: {{default: school}}
metrics: {{listen: "127.0.0.1:{metrics}"}}
"""

WORKLOAD = [
    ("www.example.test", "A"),
    ("example.test", "AAAA"),
    ("mail.example.test", "A"),
    ("cname.example.test", "A"),
    ("nx.example.test", "A"),
    ("casino.example.test", "A"),  # blocked: the school profile's keyword
    ("xxx-videos.example.test", "A"),  # blocked: keyword
    ("pornhub.com", "A"),  # blocked: the bundled adult list
]


def _breakages(config: Path, school: Path) -> list[Callable[[], None]]:
    """Ways an operator breaks the config in place: each one a single file write."""
    good_config, good_school = config.read_text(), school.read_text()
    return [
        lambda: config.write_text(good_config + "cache: {size: [oops\n"),  # YAML syntax
        lambda: config.write_text(good_config.replace("default: school", "default: shcool")),
        lambda: school.write_text(good_school + "safe_search: {youtube: sometimes}\n"),
        lambda: config.write_text(good_config + "workers: many\n"),
    ]


def _denied(port: int) -> bool:
    return ask(port, SWITCH, timeout=2).rcode() == dns.rcode.NXDOMAIN


def _failures(metrics_port: int) -> float | None:
    return metric(metrics_port, "lachan_config_reload_failures_total")


def _answers_consistently(port: int, denied: bool, tries: int = 8) -> bool:
    """``tries`` queries from fresh sockets (so workers' SO_REUSEPORT spread covers each)."""
    return all(_denied(port) == denied for _ in range(tries))


def _send_reloads(
    server: LachanProcess, policies: Path, metrics_port: int, started: float
) -> tuple[int, int]:
    """The 10 SIGHUPs, spread over the load; returns (valid, invalid) counts."""
    config, school = config_path(server), policies / "school.yaml"
    good_config, good_school = config.read_text(), school.read_text()
    breakages = _breakages(config, school)
    denied, valid, invalid = False, 0, 0
    for i, kind in enumerate(RELOADS):
        time.sleep(max(0.0, started + 1.0 + i * 1.6 - time.monotonic()))
        if kind == "V":
            config.write_text(good_config)
            denied = not denied
            school.write_text(good_school + (f"deny: [{SWITCH}]\n" if denied else ""))
            signal_process(server, signal.SIGHUP)
            valid += 1
            assert wait_until(lambda d=denied: _answers_consistently(server.port, d), 5, 0.2)
        else:
            breakages[invalid % len(breakages)]()
            signal_process(server, signal.SIGHUP)
            invalid += 1
            assert wait_until(lambda n=invalid: _failures(metrics_port) == n, 5, 0.2), (
                server.stderr()[-2000:]
            )
            assert _answers_consistently(server.port, denied)  # the old policy stays
            school.write_text(good_school + (f"deny: [{SWITCH}]\n" if denied else ""))
            config.write_text(good_config)
    return valid, invalid


def _reload_under_load(tmp_path: Path, workers: int | None) -> None:
    policies = copy_policies(tmp_path / "policies")
    metrics_port = free_port(("127.0.0.1",))
    data = write_perf_data(tmp_path / "queries.txt", WORKLOAD)
    with StubUpstream(seed=71) as stub:
        config = CONFIG.format(policies=policies, metrics=metrics_port)
        server = start_lachan(tmp_path, stub.address, config, workers=workers)
        try:
            # A single process reports 1 worker (itself); a supervisor counts its workers.
            assert wait_until(
                lambda: metric(metrics_port, "lachan_workers") == float(workers or 1), 20
            )
            for name, rdtype in WORKLOAD:  # warm the cache: the load is hits and blocks
                ask(server.port, name, rdtype)
            assert not _denied(server.port)
            baseline = run_dnsperf(server.port, data, BASELINE_SECONDS, QPS)
            perf = start_dnsperf(server.port, data, LOAD_SECONDS, QPS)
            try:
                valid, invalid = _send_reloads(server, policies, metrics_port, time.monotonic())
            finally:
                loaded = finish_dnsperf(perf, LOAD_SECONDS + 30)
            _check(server, metrics_port, baseline, loaded, valid, invalid)
        finally:
            server.stop()
    log = server.stderr()
    assert log.count("reload failed") >= invalid and "Traceback" not in log, log[-3000:]


def _check(
    server: LachanProcess,
    metrics_port: int,
    baseline: PerfResult,
    loaded: PerfResult,
    valid: int,
    invalid: int,
) -> None:
    print(f"baseline {BASELINE_SECONDS}s: {baseline}\nunder reloads {LOAD_SECONDS}s: {loaded}")
    assert (valid, invalid) == (6, 4)
    allowed = math.ceil(baseline.lost * LOAD_SECONDS / BASELINE_SECONDS)
    assert loaded.lost <= allowed, loaded.output
    assert loaded.completed >= 0.9 * QPS * LOAD_SECONDS, loaded.output  # -Q was honoured
    assert metric(metrics_port, "lachan_config_reload_failures_total") == invalid
    assert metric(metrics_port, "lachan_config_reloads_total") == valid + invalid
    assert server.alive()
    assert ask(server.port, "www.example.test").answer


def test_reload_under_load_one_process(tmp_path: Path) -> None:
    _reload_under_load(tmp_path, workers=None)


def test_reload_under_load_two_workers(tmp_path: Path) -> None:
    _reload_under_load(tmp_path, workers=2)


def _ask_on(sock: socket.socket, name: str) -> dns.message.Message:
    dns.query.send_tcp(sock, dns.message.make_query(name, "A"), time.time() + 3)
    reply, _ = dns.query.receive_tcp(sock, time.time() + 3)
    return reply


def test_open_tcp_connection_follows_a_reload(tmp_path: Path) -> None:
    # dnsdist keeps TCP connections to its backends open for many queries: a reload must
    # reach queries on a connection that was opened before it, not only new connections.
    policies = copy_policies(tmp_path / "policies")
    metrics_port = free_port(("127.0.0.1",))
    school = policies / "school.yaml"
    with StubUpstream(seed=72) as stub:
        config = CONFIG.format(policies=policies, metrics=metrics_port)
        server = start_lachan(tmp_path, stub.address, config)
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
                assert _ask_on(sock, SWITCH).rcode() == dns.rcode.NOERROR
                school.write_text(school.read_text() + f"deny: [{SWITCH}]\n")
                signal_process(server, signal.SIGHUP)
                assert wait_until(lambda: _denied(server.port), 5, 0.1)
                assert _ask_on(sock, SWITCH).rcode() == dns.rcode.NXDOMAIN
                assert _ask_on(sock, "www.example.test").answer  # the connection still serves
        finally:
            server.stop()
