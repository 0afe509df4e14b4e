"""Tests for resolver.metrics: promtool lint, privacy of label values, operator assets."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from resolver import metrics, stats
from resolver.errors import ConfigError
from resolver.stats import TCP, UDP, LabelSets, Stats
from resolver.subscribers.runtime import METRIC_NAMES as subscriber_metrics
from tests.tools import require

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "systemd/prometheus/lachan-alerts.yml"
DASHBOARD = ROOT / "systemd/grafana/lachan-dashboard.json"
LABELS = LabelSets(
    categories=frozenset({"adult", "gambling"}),
    profiles=frozenset({"school", "under16"}),
    upstreams=frozenset({"1.1.1.1:53", "[2606:4700:4700::1111]:53"}),
    sources=frozenset({"ut1-adult"}),
)
SITE = metrics.SiteLabels("hcm-q1-thpt-02", "school")

# Things a careless caller might pass where a bounded label belongs.
CLIENTS = ("192.0.2.77", "2001:db8:beef::42", "10.9.8.7")
NAMES = ("pornhub-secret-child.example", "xn--cc-secret-9ia.example", "nhacai-vn.example")


def exposition(s: Stats) -> str:
    registry = CollectorRegistry()
    metrics.register(registry, s.snapshot, SITE, version="0.1.0", started_at=1.7e9)
    return generate_latest(registry).decode()


def populated() -> Stats:
    """A Stats with at least one sample in every family."""
    s = Stats(LABELS)
    s.record_query(UDP, 1)
    s.record_query(TCP, 65)
    s.record_answer(UDP, "blocked", "adult", "under16", 0.00004)
    s.record_answer(TCP, "allowed", "none", "school", 0.012)
    s.record_rewrite("youtube")
    s.record_bypass("doh")
    s.cache_hits, s.cache_misses, s.cache_evictions, s.prefetches = 9, 3, 1, 2
    s.cache_size = lambda: 1234
    s.record_upstream("1.1.1.1:53", 0.011)
    s.record_upstream_failure("1.1.1.1:53", "timeout")
    s.set_index_entries({("adult", "ut1-adult"): 219522})
    s.record_refresh("ut1-adult", True, now=1.7e9)
    s.record_refresh("ut1-adult", False, now=1.7e9 + 60)
    s.record_reload(True, now=1.7e9)
    s.record_reload(False, now=1.7e9 + 1)
    s.worker_restarts, s.workers = 1, 2
    s.tcp_refused["acl"] = 4
    s.console_refused[("blockpage", "slow")] = 3
    s.upstream_mismatched["1.1.1.1:53"] = 2
    s.cache_bytes = lambda: 4096
    return s


def test_promtool_check_metrics_is_clean() -> None:
    text = exposition(populated())
    run = subprocess.run(
        [require("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "" and run.stderr.strip() == ""


def test_every_metric_is_exposed_with_help_and_constant_labels() -> None:
    families = list(text_string_to_metric_families(exposition(populated())))
    samples = [s for f in families for s in f.samples]
    assert {s.name for s in samples} == metrics.exposed_names()
    assert all(f.documentation for f in families)
    assert all(s.labels["site"] == SITE.site for s in samples)
    assert all(s.labels["site_kind"] == "school" for s in samples)


@pytest.mark.parametrize("m", metrics.METRICS, ids=lambda m: m.name)
def test_naming_rules(m: metrics.MetricDef) -> None:
    assert m.name.startswith(metrics.PREFIX) and re.fullmatch(r"[a-z_]+", m.name)
    assert m.family in stats.FAMILIES
    assert m.name.endswith("_total") == (m.kind == "counter")
    if m.kind == "histogram":
        assert m.name.endswith("_seconds")
    if "timestamp" in m.name:
        assert m.name.endswith("_timestamp_seconds") and m.kind == "gauge"


def test_every_stats_family_has_exactly_one_metric() -> None:
    assert sorted(m.family for m in metrics.METRICS) == sorted(stats.FAMILIES)


def test_no_client_address_or_name_reaches_a_metric() -> None:
    s = Stats(LABELS)
    for client, name in zip(CLIENTS, NAMES, strict=True):
        s.record_query(UDP, 1)
        s.record_answer(UDP, "blocked", name, client, 0.001)  # arguments swapped by a bug
        s.record_answer(UDP, client, name, "school", 0.001)
        s.record_rewrite(name)
        s.record_bypass(client)
        s.record_upstream(client + ":53", 0.01)
        s.record_upstream_failure("1.1.1.1:53", name)
        s.record_refresh(name, False, now=1.0)
        s.set_index_entries({(name, client): 1})
    text = exposition(s)
    for needle in (*CLIENTS, *NAMES, "secret", "example"):
        assert needle not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label, value in sample.labels.items():
                assert _is_vocabulary(label, value), (sample.name, label, value)


def _is_vocabulary(label: str, value: str) -> bool:
    if label in ("site", "site_kind", "version", "python", "le"):
        return True
    return value == stats.OTHER or value in LABELS.allowed(label)


def test_describe_does_not_scrape() -> None:
    calls: list[int] = []

    def source() -> stats.Snapshot:
        calls.append(1)
        return Stats(LABELS).snapshot()

    registry = CollectorRegistry()
    metrics.register(registry, source, SITE, version="x", started_at=0.0)
    assert calls == []
    generate_latest(registry)
    assert calls == [1]


def test_histogram_buckets_are_cumulative() -> None:
    counts = [1, 0, 2] + [0] * (len(stats.DURATION_BUCKETS) - 3) + [4]
    buckets = metrics.cumulative_buckets(counts)
    assert buckets[0] == ("5e-05", 1.0) and buckets[2] == ("0.00025", 3.0)
    assert buckets[-1] == ("+Inf", 7.0) and len(buckets) == len(stats.DURATION_BUCKETS) + 1


@pytest.mark.parametrize(("site", "kind"), [("x", "hospital"), ("", "school"), ("x", "School")])
def test_site_labels_are_validated(site: str, kind: str) -> None:
    with pytest.raises(ConfigError):
        metrics.SiteLabels(site, kind)


def promql_names(text: str) -> set[str]:
    return set(re.findall(r"\blachan_[a-z0-9_]+", text))


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_dashboard_and_alerts_use_only_defined_metrics() -> None:
    exprs = dashboard_exprs()
    used = promql_names("\n".join(exprs)) | promql_names(ALERTS.read_text())
    defined = metrics.exposed_names() | set(subscriber_metrics)  # ISP mode's own collector
    assert used and used <= defined, used - defined
    # The issue names these views; each must have a panel reading the metric behind it.
    for name in ("lachan_answers_total", "lachan_request_duration_seconds_bucket",
                 "lachan_cache_hits_total", "lachan_upstream_failures_total",
                 "lachan_list_last_success_timestamp_seconds"):  # fmt: skip
        assert any(name in e for e in exprs), name


def test_dashboard_is_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "site"} <= names
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool has no expression checker, so the queries go in as recording rules."""
    subs = {"$__rate_interval": "1m", "$__range": "1h", "$site": ".*"}
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        for var, value in subs.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:panel{i}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = subprocess.run(
        [require("promtool"), "check", "rules", str(path)], capture_output=True, timeout=30
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()


def test_promtool_check_rules() -> None:
    run = subprocess.run(
        [require("promtool"), "check", "rules", str(ALERTS)], capture_output=True, timeout=30
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
    assert b"SUCCESS: 10 rules found" in run.stdout


def test_alerts_fire_as_specified(tmp_path: Path) -> None:
    """promtool's unit tests (tests/metrics/alerts_test.yml) against the shipped rules."""
    shutil.copy(ALERTS, tmp_path / "lachan-alerts.yml")
    shutil.copy(ROOT / "tests/metrics/alerts_test.yml", tmp_path / "alerts_test.yml")
    run = subprocess.run(
        [require("promtool"), "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()


def test_every_shipped_alert_has_a_unit_test_where_it_fires() -> None:
    shipped = set(re.findall(r"alert: (\w+)", ALERTS.read_text()))
    cases = yaml.safe_load((ROOT / "tests/metrics/alerts_test.yml").read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert shipped and shipped == fired, shipped ^ fired
