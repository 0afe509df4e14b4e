"""A running `lachan collector serve` against junk pushes: 429 with Retry-After, counted, bounded."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import requests
from collector_helpers import keys, registry_of, write_ledger
from serve_fixture import collector_serve

from resolver.collector.db import Database

LACHAN = [sys.executable, "-m", "resolver.cli"]
JUNK = b'{"seq": 0, "instance": "gw1", "sig": "not a signature"}\n'


def _metric(base: str, name: str, label: str) -> float:
    text = requests.get(base + "/metrics", timeout=10).text
    found = re.search(rf'^{name}\{{[a-z]+="{label}"\}} (\S+)$', text, re.M)
    assert found, (name, label, text)
    return float(found.group(1))


def _site(tmp: Path, site: str = "thpt-a") -> tuple[Path, Path]:
    """A site with a three-record ledger and a config pointing at it: (registry, config)."""
    private, public = keys(tmp / site)
    ledger = tmp / f"{site}.jsonl"
    write_ledger(ledger, private, site, 3)
    config = tmp / "lachan.yaml"
    config.write_text(f"site: {{id: {site}, kind: school}}\n"
                      f"audit: {{ledger: {ledger}, key: {private}}}\n")  # fmt: skip
    return registry_of(tmp / "sites.yaml", {site: public}), config


def _junk(base: str, site: str = "nobody", **headers: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/sites/{site}/records", data=JUNK * 50, timeout=10,
                         headers=headers)  # fmt: skip


def test_an_address_that_keeps_failing_gets_429_and_report_push_waits_as_told(
    tmp_path: Path,
) -> None:
    registry, config = _site(tmp_path)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with collector_serve(db, registry, "--failed-pushes", "3/3") as base:
        assert [_junk(base).status_code for _ in range(3)] == [404, 404, 404]
        refused = _junk(base)
        assert (refused.status_code, refused.headers["Retry-After"]) == (429, "3")
        # The address is held back everywhere in the API, for a good site's acks too.
        assert requests.get(base + "/api/v1/sites/thpt-a/acks", timeout=10).status_code == 429
        assert _metric(base, "lachan_collector_push_failures_total", "unknown-site") == 3
        assert _metric(base, "lachan_collector_push_throttled_total", "address") == 2
        while _junk(base).status_code != 429:  # spent again, right before the push
            pass
        throttled = _metric(base, "lachan_collector_push_throttled_total", "address")
        start = time.monotonic()
        done = subprocess.run([*LACHAN, "report", "push", "--config", str(config),
                               "--collector", base], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        waited = time.monotonic() - start
        assert done.returncode == 0, done.stderr
        assert done.stdout == "sent 3 lines; the collector acknowledges gw1 seq 2\n"
        # One 429, then one wait of Retry-After (not the back-off's immediate first retry).
        assert _metric(base, "lachan_collector_push_throttled_total", "address") == throttled + 1
        assert waited >= 2.0


def test_a_body_past_the_limit_is_413_and_forged_lines_make_one_incident_not_thousands(
    tmp_path: Path,
) -> None:
    registry, _ = _site(tmp_path)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with collector_serve(db, registry) as base:
        api = base + "/api/v1/sites/thpt-a/records"
        try:
            status = requests.post(api, data=b"x" * (9 * 1024 * 1024), timeout=30).status_code
        except requests.ConnectionError:
            status = 0  # the collector may close before the client finished sending
        assert status in (413, 0)
        assert _metric(base, "lachan_collector_push_failures_total", "too-large") == 1
        reply = requests.post(api, data=JUNK * 2000, timeout=60)
        assert reply.status_code == 409
        assert {r["kind"] for r in reply.json()["rejected"]} == {"forged"}
        assert len(reply.json()["rejected"]) == 2000
        assert _metric(base, "lachan_collector_push_failures_total", "unsigned") == 1
    with Database(db).tx() as tx:
        assert tx.run("SELECT kind, COUNT(*) FROM incidents GROUP BY kind") == [("forged", 1)]


def test_junk_for_a_site_from_many_addresses_holds_back_failing_ones_not_the_school(
    tmp_path: Path,
) -> None:
    registry, config = _site(tmp_path)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    # A trusted proxy on loopback forwards for many clients: each is limited on its own.
    with collector_serve(db, registry, "--trusted-proxy", "127.0.0.1",
                         "--failed-pushes", "2/60") as base:  # fmt: skip
        statuses = [_junk(base, "thpt-a", **{"X-Forwarded-For": f"10.0.0.{n % 6}"}).status_code
                    for n in range(12)]  # fmt: skip
        assert statuses == [409] * 12  # each address failed twice: the site's 12 are spent
        assert _junk(base, "thpt-a", **{"X-Forwarded-For": "10.0.0.8"}).status_code == 409
        held = _junk(base, "thpt-a", **{"X-Forwarded-For": "10.0.0.8"})
        assert (held.status_code, held.headers["Retry-After"]) == (429, "10")
        assert _metric(base, "lachan_collector_push_throttled_total", "site") == 1
        # The school's own pusher never failed: it is not held back by others' junk.
        ledger = tmp_path / "thpt-a.jsonl"
        good = requests.post(base + "/api/v1/sites/thpt-a/records", data=ledger.read_bytes(),
                             headers={"X-Forwarded-For": "10.0.0.7"}, timeout=10)  # fmt: skip
        assert (good.status_code, good.json()["acks"]) == (200, {"gw1": 2})
        assert _metric(base, "lachan_collector_push_failures_total", "unsigned") == 13
        # A client from beyond the proxy is not loopback, whatever the proxy's own address.
        outside = requests.get(base + "/metrics", headers={"X-Forwarded-For": "10.0.0.7"},
                               timeout=10)  # fmt: skip
        assert outside.status_code == 403
