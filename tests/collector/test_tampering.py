"""Five ways to tamper with a ledger, against a running collector on SQLite and PostgreSQL:
each is refused or flagged, and `status --json` and the dashboard say which."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import requests
from collector_helpers import T0, keys, registry_of, write_ledger
from serve_fixture import collector_serve

from resolver.collector.auth import add_user
from resolver.collector.db import Database
from resolver.report_push import push, session

LACHAN = [sys.executable, "-m", "resolver.cli"]
PASSWORD = "mật-khẩu-đủ-dài"
SITES = ("thpt-forged", "thpt-otherkey", "thpt-replay", "thpt-tail", "thpt-middle")


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _tamper(base: str, tmp: Path) -> None:
    api = base + "/api/v1/sites/"
    forged = _lines(tmp / "thpt-forged.jsonl")[4].replace(b'"school":104', b'"school":105')
    assert requests.post(api + "thpt-forged/records", data=forged, timeout=10).status_code == 409
    other, _ = keys(tmp / "stolen")  # a key that is not the enrolled one
    write_ledger(tmp / "other.jsonl", other, "thpt-otherkey", 1, start=T0 + 5 * 3600)
    reply = requests.post(api + "thpt-otherkey/records", data=(tmp / "other.jsonl").read_bytes(),
                          timeout=10)  # fmt: skip
    assert reply.status_code == 409
    old = _lines(tmp / "thpt-replay.jsonl")[1]
    assert requests.post(api + "thpt-replay/records", data=old, timeout=10).status_code == 409
    # The sites themselves: the last two records deleted, then two new ones written; and
    # records from seq 2 on re-signed with the site's own key. Their next push shows it.
    for site, keep in (("thpt-tail", 3), ("thpt-middle", 2)):
        ledger = tmp / f"{site}.jsonl"
        ledger.write_bytes(b"".join(_lines(ledger)[:keep]))
        write_ledger(ledger, tmp / site / "audit.key", site, 5 - keep, start=T0 + keep * 3600,
                     blocks=0)  # fmt: skip
        outcome = push(ledger, site, base, session())
        assert [r.split(":")[1].strip() for r in outcome.rejected] == ["rewritten"], outcome


def _site_page(base: str, site: str) -> str:
    http = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get(base + "/login", timeout=10).text)
    assert csrf
    http.post(base + "/login", timeout=30,
              data={"csrf": csrf.group(1), "name": "kiem-tra", "password": PASSWORD})  # fmt: skip
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", http.get(base + site, timeout=10).text))


def test_forged_other_key_replayed_cut_and_rewritten_ledgers_are_each_named(
    tmp_path: Path, db_url: str
) -> None:
    publics = {}
    for site in SITES:
        private, publics[site] = keys(tmp_path / site)
        write_ledger(tmp_path / f"{site}.jsonl", private, site, 5)
    registry = registry_of(tmp_path / "sites.yaml", publics)
    database = Database(db_url)
    database.migrate()
    add_user(database, "kiem-tra", "auditor", PASSWORD)
    database.close()
    with collector_serve(db_url, registry) as base:
        for site in SITES:
            assert push(tmp_path / f"{site}.jsonl", site, base, session()).acks == {"gw1": 4}
        _tamper(base, tmp_path)
        pages = {site: _site_page(base, f"/site/{site}") for site in SITES}
        dashboard = _site_page(base, "/")
    done = subprocess.run([*LACHAN, "collector", "status", "--db", db_url, "--registry",
                           str(registry), "--json", "--now", "2025-11-28T12:10:00+07:00"],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    got = {s["site"]: (s["chain"], s["covered"], s["incidents"]) for s in json.loads(done.stdout)}
    assert got == {
        "thpt-forged": ("valid", True, {"forged": 1}),  # unsigned: the chain is untouched
        "thpt-otherkey": ("valid", True, {"other-key": 1}),
        "thpt-replay": ("valid", True, {"replay": 1}),
        "thpt-tail": ("rewritten", False, {"rewritten": 1}),
        "thpt-middle": ("rewritten", False, {"rewritten": 1}),
    }
    assert "Giả mạo: chữ ký không hợp lệ (forged)" in pages["thpt-forged"]
    assert "Ký bằng khóa không phải của đơn vị (other-key)" in pages["thpt-otherkey"]
    assert "Gửi lại bản ghi cũ (replay)" in pages["thpt-replay"]
    for site in ("thpt-tail", "thpt-middle"):
        assert "Chuỗi nhật ký Bị viết lại" in pages[site]
        assert "Nhật ký bị viết lại (rewritten)" in pages[site]
        assert f"({site}) Quận 1 Nhật ký bị viết lại" in dashboard  # why it is not covered
