"""End to end: ``lachan coverage --probe`` against real lachan instances on loopback ports.

Four registered sites: ``thcs-a`` filters (bundled lists, under16), ``isp-b`` runs with its lists
disabled and the isp-default profile (so nothing blocks the probe's test name), ``thpt-c``'s
resolver has been stopped, and ``thcs-d`` runs under16 with lists disabled (its keyword rules
still catch the test name, but its canary says it has no index).
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import (
    INTERNET_V4,
    ROOT,
    InternetStub,
    LachanProcess,
    addresses,
    ask,
    compiled_state_dir,
    lachan_command,
    rcode,
    start_lachan,
    stop_checked,
)

from resolver.coverage.canary import parse_canary
from resolver.coverage.probe import TEST_NAME


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    state = compiled_state_dir(tmp_path_factory.getbasetemp())
    work = tmp_path_factory.mktemp("e2e-coverage")
    configs = {
        "thcs-a": f'site: {{id: thcs-a, kind: school}}\nlists: {{state_dir: "{state}"}}\n',
        "isp-b": "site: {id: isp-b, kind: isp}\nlists: {enabled: false}\n"
        "clients: {default: isp-default}\n",
        "thpt-c": "site: {id: thpt-c, kind: school}\nlists: {enabled: false}\n",
        "thcs-d": "site: {id: thcs-d, kind: school}\nlists: {enabled: false}\n",
    }
    with InternetStub() as stub:
        running: dict[str, LachanProcess] = {}
        try:
            for site, config in configs.items():
                running[site] = start_lachan(work / site, stub.address, config, ipv6=False)
            ports = {site: p.port for site, p in running.items()}
            stop_checked(running.pop("thpt-c"))  # a site whose resolver is down
            registry = work / "sites.yaml"
            registry.write_text(
                "sites:\n"
                + "".join(
                    f"  - {{id: {site}, name: Site {site}, kind: {'isp' if 'isp' in site else 'school'}, "
                    f'resolver: "127.0.0.1:{port}"}}\n'
                    for site, port in ports.items()
                ),
                encoding="utf-8",
            )
            yield registry, ports
        finally:
            for process in running.values():
                stop_checked(process)


def coverage(registry: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lachan_command(), "coverage", "--registry", str(registry), "--probe",
         "--format", fmt, "--timeout", "0.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def rows(registry: Path) -> dict[str, dict[str, str]]:
    done = coverage(registry, "csv")
    assert done.returncode == 0, done.stderr
    return {r["site"]: r for r in csv.DictReader(io.StringIO(done.stdout))}


def test_the_instances_answer_as_configured(sites: tuple[Path, dict[str, int]]) -> None:
    _registry, ports = sites
    assert rcode(ask(ports["thcs-a"], TEST_NAME)) == "NXDOMAIN"
    assert addresses(ask(ports["isp-b"], TEST_NAME)) == [INTERNET_V4]
    reply = ask(ports["thcs-a"], "status.lachan.arpa", "TXT")
    status = parse_canary(s for rrset in reply.answer for r in rrset for s in r.strings)
    assert (status.site, status.profile, status.kind) == ("thcs-a", "under16", "school")
    assert status.index.startswith("sha256:")


def test_probe_per_site_results(sites: tuple[Path, dict[str, int]]) -> None:
    registry, _ports = sites
    found = rows(registry)
    assert list(found) == ["thcs-a", "isp-b", "thpt-c", "thcs-d"]
    a = found["thcs-a"]
    assert (a["covered"], a["probe_reachable"], a["test_blocked"], a["reasons"]) == (
        "yes", "yes", "yes", "",
    )  # fmt: skip
    match = re.fullmatch(r"site=thcs-a profile=under16 index_age=(\d+)", a["canary"])
    assert match and int(match.group(1)) < 24 * 3600, a["canary"]
    b = found["isp-b"]
    assert (b["covered"], b["probe_reachable"], b["test_blocked"]) == ("no", "yes", "no")
    assert b["canary"] == "site=isp-b profile=isp-default index_age=0"
    assert b["reasons"] == (
        f"canary: no blocklist index (lists disabled); test name not blocked ({INTERNET_V4})"
    )
    c = found["thpt-c"]
    assert (c["covered"], c["probe_reachable"], c["test_blocked"]) == ("no", "no", "")
    assert c["reasons"] == "resolver unreachable"
    # Probe-only runs have no report evidence: those columns stay empty.
    assert all(found[s]["live"] == "" and found[s]["signature"] == "" for s in found)


def test_probe_headline(sites: tuple[Path, dict[str, int]]) -> None:
    registry, _ports = sites
    done = coverage(registry, "table")
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("được bảo vệ: trường học ") and " / covered: schools " in last
    assert last.endswith("ISPs 0/1 (0.0%)")


def test_site_without_an_index_is_not_covered(sites: tuple[Path, dict[str, int]]) -> None:
    registry, _ports = sites
    d = rows(registry)["thcs-d"]
    assert d["canary"] == "site=thcs-d profile=under16 index_age=0"
    assert d["test_blocked"] == "yes"  # the keyword 'porn' still blocks the test name
    assert d["covered"] == "no"
