"""End to end: Prometheus metrics through a real Prometheus, and privacy of metrics and ledger.

One ``lachan serve`` with ``metrics.listen`` and the signed audit ledger; a real Prometheus
(tests/prom_server.py) scrapes it every second. Known numbers of allowed, blocked and rewritten
queries come from distinctive loopback addresses with distinctive names; afterwards neither
/metrics nor the ledger may contain any of those names or addresses, and the ledger must verify
after SIGTERM and hold the same counts.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import (
    INTERNET_V4,
    ROOT,
    InternetStub,
    LachanProcess,
    addresses,
    ask,
    cnames,
    compiled_state_dir,
    free_port,
    lachan_command,
    rcode,
    start_lachan,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.prom_server import PrometheusServer
from tests.tools import require

ALLOWED_FROM, BLOCKED_FROM, REWRITTEN_FROM = "127.0.0.77", "127.0.0.78", "127.0.0.79"
ALLOWED = [f"kid{i}.e2e-privacy-name.org" for i in range(5)]
BLOCKED = [f"p{i}.003755.xyz" for i in range(4)]  # adult, shadowwhisperer-adult
REWRITTEN = ["www.bing.com", "duckduckgo.com", "www.google.com"]
SECRETS = [*ALLOWED, *BLOCKED, *REWRITTEN, "e2e-privacy-name", "003755",
           ALLOWED_FROM, BLOCKED_FROM, REWRITTEN_FROM]  # fmt: skip


@dataclass
class Setup:
    process: LachanProcess
    metrics_url: str
    ledger: Path
    public_key: Path
    prom: PrometheusServer


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lachan_command(), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    state = compiled_state_dir(tmp_path_factory.getbasetemp())
    work = tmp_path_factory.mktemp("e2e-metrics")
    keys = work / "keys"
    made = run("audit", "keygen", "--out", str(keys))
    assert made.returncode == 0, made.stderr
    metrics_port = free_port(("127.0.0.1",))
    ledger = work / "ledger" / "e2e-metrics.jsonl"
    ledger.parent.mkdir()
    config = f"""
site: {{id: e2e-metrics, kind: isp}}
lists: {{state_dir: "{state}"}}
metrics: {{listen: "127.0.0.1:{metrics_port}"}}
audit: {{ledger: "{ledger}", key: "{keys / "audit.key"}", period: 60}}
"""
    with InternetStub() as stub:
        process = start_lachan(work, stub.address, config, ipv6=False)
        (work / "prom").mkdir()
        try:
            with PrometheusServer(work / "prom", [f"127.0.0.1:{metrics_port}"]) as prom:
                yield Setup(
                    process,
                    f"http://127.0.0.1:{metrics_port}/metrics",
                    ledger,
                    keys / "audit.pub",
                    prom,
                )
        finally:
            process.stop()


def metrics_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode("utf-8")


@pytest.fixture(scope="module")
def traffic(env: Setup) -> Setup:
    """The known queries, sent once for the whole module."""
    for name in ALLOWED:
        assert addresses(ask(env.process.port, name, source=ALLOWED_FROM)) == [INTERNET_V4]
    for name in BLOCKED:
        assert rcode(ask(env.process.port, name, source=BLOCKED_FROM)) == "NXDOMAIN"
    for name in REWRITTEN:
        assert cnames(ask(env.process.port, name, source=REWRITTEN_FROM)), name
    return env


def test_prometheus_sees_the_known_counts(traffic: Setup) -> None:
    prom = traffic.prom
    prom.wait_for('sum(lachan_answers_total{action="allowed"})', lambda v: v == 5.0)
    blocked = 'lachan_answers_total{action="blocked",category="adult",profile="under16"}'
    prom.wait_for(blocked, lambda v: v == 4.0)
    prom.wait_for('sum(lachan_answers_total{action="rewritten"})', lambda v: v == 3.0)
    assert prom.scalar('sum(lachan_answers_total{action="blocked"})') == 4.0
    for engine in ("bing", "duckduckgo", "google"):
        assert prom.scalar(f'lachan_safesearch_rewrites_total{{engine="{engine}"}}') == 1.0
    assert prom.scalar('sum(lachan_queries_total{site="e2e-metrics",site_kind="isp"})') == 12.0
    assert prom.scalar('up{job="lachan"}') == 1.0


def test_promtool_accepts_the_live_metrics(traffic: Setup, tmp_path: Path) -> None:
    promtool = require("promtool")
    text = metrics_text(traffic.metrics_url)
    assert "lachan_answers_total" in text
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_metrics_hold_no_name_and_no_client_address(traffic: Setup) -> None:
    text = metrics_text(traffic.metrics_url)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, leaked


def test_bypass_attempts_are_counted(traffic: Setup) -> None:
    reply = ask(traffic.process.port, "use-application-dns.net", source=BLOCKED_FROM)
    assert rcode(reply) == "NXDOMAIN"
    lines = [
        line
        for line in metrics_text(traffic.metrics_url).splitlines()
        if line.startswith("lachan_bypass_attempts_total{") and 'kind="canary"' in line
    ]
    assert lines and float(lines[0].rsplit(" ", 1)[1]) == 1.0


def test_repeated_rewrites_are_all_counted(traffic: Setup) -> None:
    def rewrites() -> float:
        for line in metrics_text(traffic.metrics_url).splitlines():
            if line.startswith("lachan_safesearch_rewrites_total{") and 'engine="youtube"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = rewrites()
    for _ in range(3):  # the same question from the same client, well within one second
        assert cnames(ask(traffic.process.port, "m.youtube.com", source="127.0.0.80"))
    assert rewrites() - before == 3.0


def answer_samples(text: str) -> Counter[tuple[str, str, str]]:
    """lachan_answers_total by (action, category, profile) from a /metrics text."""
    found: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "lachan_answers_total" and sample.value:
                labels = sample.labels
                found[(labels["action"], labels["category"], labels["profile"])] += int(
                    sample.value
                )
    return found


def test_ledger_verifies_after_sigterm_and_holds_counts_but_no_names(traffic: Setup) -> None:
    # Let Prometheus see the traffic first when the whole module runs.
    traffic.prom.wait_for('sum(lachan_answers_total{action="rewritten"})', lambda v: v >= 3.0)
    served = answer_samples(metrics_text(traffic.metrics_url))
    code = traffic.process.stop()
    assert code == 0, traffic.process.stderr()
    traffic.process.assert_clean_log()
    done = run("audit", "verify", str(traffic.ledger), "--public-key", str(traffic.public_key))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature and chain valid" in done.stdout
    text = traffic.ledger.read_text(encoding="utf-8")
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, leaked
    records = [json.loads(line) for line in text.splitlines()]
    assert records and all(r["site"] == "e2e-metrics" for r in records)
    totals: Counter[tuple[str, str, str]] = Counter()
    safe: Counter[str] = Counter()
    for record in records:
        for action, categories in record["answers"].items():
            for category, profiles in categories.items():
                for profile, n in profiles.items():
                    totals[(action, category, profile)] += n
        safe.update(record.get("safe_search", {}))
    assert totals[("allowed", "none", "under16")] == 5
    assert totals[("blocked", "adult", "under16")] == 4
    assert totals == served  # the ledger recorded exactly what the server answered
    for engine in ("bing", "duckduckgo", "google"):
        assert safe[engine] == 1, safe
