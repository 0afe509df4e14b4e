"""End to end: ``lachan coverage --prometheus`` against a real Prometheus scraping real lachans.

Three registered sites: ``thcs-p`` (a school, bundled lists on), ``isp-q`` (an ISP running with
``lists: {enabled: false}``) and ``thpt-r`` (a school with no resolver running, so Prometheus has
never seen it). Both instances get known traffic after Prometheus has started scraping them,
because ``increase()`` only counts what happened between two scrapes.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import (
    INTERNET_V4,
    ROOT,
    InternetStub,
    addresses,
    ask,
    compiled_state_dir,
    free_port,
    lachan_command,
    rcode,
    start_lachan,
    stop_checked,
)

from resolver.audit.record import parse_iso
from tests.prom_server import PrometheusServer

ADULT = "003755.xyz"  # shadowwhisperer-adult (bundled)
ALLOWED = [f"n{i}.coverage-prom-e2e.org" for i in range(6)]
BLOCKED = [f"b{i}.{ADULT}" for i in range(4)]


@dataclass
class Setup:
    registry: Path
    prom: PrometheusServer


def site_config(site: str, kind: str, lists: str, metrics_port: int) -> str:
    return (
        f"site: {{id: {site}, kind: {kind}}}\nlists: {lists}\n"
        f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}\n'
    )


BLOCKED_SERIES = 'sum(lachan_answers_total{site="thcs-p",action="blocked"})'


def wait_for_site(prom: PrometheusServer, site: str, expected: float) -> None:
    prom.wait_for(f'sum(lachan_queries_total{{site="{site}"}})', lambda v: v == expected)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    state = compiled_state_dir(tmp_path_factory.getbasetemp())
    work = tmp_path_factory.mktemp("e2e-coverage-prom")
    ports = {"thcs-p": free_port(("127.0.0.1",)), "isp-q": free_port(("127.0.0.1",))}
    configs = {
        "thcs-p": site_config("thcs-p", "school", f'{{state_dir: "{state}"}}', ports["thcs-p"]),
        "isp-q": site_config("isp-q", "isp", "{enabled: false}", ports["isp-q"]),
    }
    registry = work / "sites.yaml"
    registry.write_text(
        "sites:\n"
        "  - {id: thcs-p, name: THCS P, kind: school}\n"
        "  - {id: isp-q, name: ISP Q, kind: isp}\n"
        "  - {id: thpt-r, name: THPT R, kind: school}\n",
        encoding="utf-8",
    )
    with InternetStub() as stub:
        running = {}
        try:
            for site, config in configs.items():
                running[site] = start_lachan(work / site, stub.address, config, ipv6=False)
            (work / "prom").mkdir()
            targets = [f"127.0.0.1:{p}" for p in ports.values()]
            with PrometheusServer(work / "prom", targets) as prom:
                send_traffic(prom, {s: p.port for s, p in running.items()})
                yield Setup(registry, prom)
        finally:
            for process in running.values():
                stop_checked(process)


def send_traffic(prom: PrometheusServer, dns_ports: dict[str, int]) -> None:
    """Warm-up queries first, so every counter series exists (a series that appears already at
    N contributes nothing to ``increase()``), then the known traffic once Prometheus has them."""
    prom.wait_for('count(up{job="lachan"} == 1)', lambda v: v == 2.0)
    for port in dns_ports.values():
        assert addresses(ask(port, "warmup.coverage-prom-e2e.org")) == [INTERNET_V4]
    assert rcode(ask(dns_ports["thcs-p"], "warmup." + ADULT)) == "NXDOMAIN"
    wait_for_site(prom, "thcs-p", 2.0)
    wait_for_site(prom, "isp-q", 1.0)
    prom.wait_for(BLOCKED_SERIES, lambda v: v == 1.0)
    for port in dns_ports.values():
        for name in ALLOWED:
            assert addresses(ask(port, name)) == [INTERNET_V4], name
    for name in BLOCKED:  # lists on: blocked; lists off: allowed (the isp has no keywords)
        assert rcode(ask(dns_ports["thcs-p"], name)) == "NXDOMAIN", name
        assert addresses(ask(dns_ports["isp-q"], name)) == [INTERNET_V4], name
    wait_for_site(prom, "thcs-p", 2.0 + len(ALLOWED) + len(BLOCKED))
    wait_for_site(prom, "isp-q", 1.0 + len(ALLOWED) + len(BLOCKED))
    prom.wait_for(BLOCKED_SERIES, lambda v: v == 1.0 + len(BLOCKED))
    # coverage judges at int(time.time()): let that whole second pass the scrape that saw it all.
    time.sleep(1.5)


def coverage(registry: Path, url: str, fmt: str) -> str:
    done = subprocess.run(
        [*lachan_command(), "coverage", "--registry", str(registry), "--prometheus", url,
         "--format", fmt],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def rows(env: Setup) -> dict[str, dict[str, str]]:
    text = coverage(env.registry, env.prom.url, "csv")
    return {r["site"]: r for r in csv.DictReader(io.StringIO(text))}


def in_window(value: str, at_least: int) -> bool:
    """``increase()`` extrapolates past the first and last samples (by up to half and one
    scrape interval), so the count over the window is the true increase or somewhat more:
    towards the start down to where the counter would be zero (the warm-up query's 1, scaled
    by the rate), towards the end by up to 1.1 intervals. Seen: 9 for 4 blocked queries."""
    return at_least <= int(value) <= at_least * 2 + 2


def test_evidence_per_site(env: Setup) -> None:
    found = rows(env)
    assert list(found) == ["thcs-p", "isp-q", "thpt-r"]
    traffic = len(ALLOWED) + len(BLOCKED)
    p, q, r = found["thcs-p"], found["isp-q"], found["thpt-r"]
    for row in (p, q):
        assert (row["live"], row["signature"]) == ("1/1", "n/a"), row
        # The time of the last scrape: Prometheus scrapes every second.
        assert 0 <= time.time() - parse_iso(row["last_report"], "last_report") < 30, row
        assert in_window(row["queries"], traffic), row
        # Probe columns stay empty without --probe.
        assert (row["probe_reachable"], row["canary"], row["test_blocked"]) == ("", "", "")
    assert in_window(p["blocked"], len(BLOCKED)), p
    assert q["blocked"] == "0"  # lists disabled, the isp-default profile has no keywords
    assert (q["covered"], q["index_age_h"]) == ("no", "")
    assert q["reasons"] == "index not current"
    assert (r["covered"], r["live"], r["last_report"], r["queries"], r["blocked"]) == (
        "no", "0/1", "", "0", "0",
    )  # fmt: skip
    assert r["reasons"] == "live instances 0/1; index not current; no queries in window"


def test_filtering_site_is_covered(env: Setup) -> None:
    p = rows(env)["thcs-p"]
    assert p["reasons"] == "" and p["covered"] == "yes", p
    assert 0.0 <= float(p["index_age_h"]) < 24.0, p  # the index was compiled this session


def test_headline(env: Setup) -> None:
    last = coverage(env.registry, env.prom.url, "table").strip().splitlines()[-1]
    assert last.endswith(" / covered: schools 1/2 (50.0%), ISPs 0/1 (0.0%)"), last


def test_headline_counts_every_registered_site(env: Setup) -> None:
    last = coverage(env.registry, env.prom.url, "table").strip().splitlines()[-1]
    assert re.fullmatch(r".* / covered: schools [01]/2 \((0|50)\.0%\), ISPs 0/1 \(0\.0%\)", last), last
