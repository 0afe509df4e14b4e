"""`lachan coverage` end to end: registry + ledgers + probes of live loopback responders."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from coverage_helpers import TEST_NAME, site_key, write_ledger

from resolver.commands.coverage import coverage

NOW = "2025-11-29T00:30:00Z"


def _registry(tmp_path: Path, ports: dict[str, int]) -> Path:
    entries = []
    for site in ("thpt-filter", "thpt-open", "isp-silent"):
        keys = site_key(tmp_path, site)
        kind = "isp" if site.startswith("isp") else "school"
        write_ledger(tmp_path / "ledgers" / f"{site}.jsonl", keys, site, kind, "gw1", range(24))
        entries.append({"id": site, "kind": kind, "public_key": f"keys/{site}/audit.pub",
                        "resolver": f"127.0.0.1:{ports[site]}"})  # fmt: skip
    path = tmp_path / "sites.yaml"
    path.write_text(json.dumps({"sites": entries}))
    return path


def test_ledgers_and_probe(tmp_path: Path, dns_sites) -> None:
    ports = {"thpt-filter": dns_sites("filter", "thpt-filter"),
             "thpt-open": dns_sites("open", "thpt-open"),
             "isp-silent": dns_sites("silent", "isp-silent")}  # fmt: skip
    registry = _registry(tmp_path, ports)
    base = ["--registry", str(registry), "--ledgers", str(tmp_path / "ledgers"), "--now", NOW]
    plain = CliRunner().invoke(coverage, [*base, "--format", "csv"])
    assert plain.exit_code == 0, plain.output
    assert [line.split(",")[4] for line in plain.output.splitlines()[1:]] == ["yes"] * 3
    probed = CliRunner().invoke(coverage, [*base, "--probe", "--test-name", TEST_NAME,
                                           "--timeout", "0.3"])  # fmt: skip
    assert probed.exit_code == 0, probed.output
    lines = probed.output.splitlines()
    assert lines[-1] == ("được bảo vệ: trường học 1/2 (50.0%), nhà mạng 1/1 (100.0%) / "
                         "covered: schools 1/2 (50.0%), ISPs 1/1 (100.0%)")  # fmt: skip
    open_row = next(line for line in lines if line.startswith("thpt-open"))
    assert "probe: test name not blocked (104.16.0.1)" in open_row
    out = tmp_path / "c.html"
    html = CliRunner().invoke(coverage, [*base, "--format", "html", "--out", str(out)])
    assert html.exit_code == 0 and "schools covered" in out.read_text()


def test_usage_and_registry_errors(tmp_path: Path) -> None:
    reg = tmp_path / "sites.yaml"
    reg.write_text("sites:\n  - {id: x, kind: farm}\n")
    none = CliRunner().invoke(coverage, ["--registry", str(reg)])
    assert none.exit_code == 2 and "--ledgers DIR" in none.output
    bad = CliRunner().invoke(coverage, ["--registry", str(reg), "--probe"])
    assert bad.exit_code == 1
    assert bad.output == f"error: {reg}: sites[0].kind: 'farm' must be school or isp\n"


def test_stale_site_after_hours(tmp_path: Path) -> None:
    keys = site_key(tmp_path, "s")
    write_ledger(tmp_path / "l" / "s.jsonl", keys, "s", "school", "gw1", range(3))
    reg = tmp_path / "sites.yaml"
    reg.write_text("sites:\n  - {id: s, kind: school, public_key: keys/s/audit.pub}\n")
    res = CliRunner().invoke(coverage, ["--registry", str(reg), "--ledgers", str(tmp_path / "l"),
                                        "--now", NOW])  # fmt: skip
    assert res.exit_code == 0
    assert "số máy đang chạy 0/1 / live instances 0/1" in res.output and res.output.endswith("ISPs 0/0 (-)\n")
    # The last report, on the province's clock (Asia/Ho_Chi_Minh by default), or on --timezone's.
    assert "2025-11-28T10:00:00+07:00" in res.output
    utc = CliRunner().invoke(coverage, ["--registry", str(reg), "--ledgers", str(tmp_path / "l"),
                                        "--now", NOW, "--timezone", "UTC"])  # fmt: skip
    assert "2025-11-28T03:00:00Z" in utc.output
