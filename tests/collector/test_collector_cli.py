"""`lachan collector enroll` and `status --json` as an operator runs them, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from collector_helpers import keys, write_ledger
from serve_fixture import collector_serve

from resolver.audit.keys import inline_public, load_public_key
from resolver.collector.db import Database
from resolver.collector.ingest import ingest

LACHAN = [sys.executable, "-m", "resolver.cli"]


def lachan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LACHAN, *args], capture_output=True, text=True, timeout=60)


def registry(tmp_path: Path, *sites: str) -> Path:
    path = tmp_path / "sites.yaml"
    entries = [{"id": s, "name": f"Trường {s}", "kind": "school", "district": "Quận 1",
                "commune": "Phường Bến Nghé"} for s in sites]  # fmt: skip
    path.write_text(yaml.safe_dump({"sites": entries}, allow_unicode=True), encoding="utf-8")
    return path


def test_status_json_says_which_site_is_valid_rewritten_or_never_heard(tmp_path, db_url) -> None:
    sites = registry(tmp_path, "thpt-a", "thpt-b", "thpt-c")
    for site in ("thpt-a", "thpt-b"):
        private, public = keys(tmp_path / site)
        done = lachan("collector", "enroll", site, "--public-key", str(public), "--db", db_url)
        assert done.returncode == 0 and done.stdout == f"{site}: enrolled\n", done.stderr
        write_ledger(tmp_path / f"{site}.jsonl", private, site, 3)
    db = Database(db_url)
    for site in ("thpt-a", "thpt-b"):
        lines = (tmp_path / f"{site}.jsonl").read_bytes().splitlines()
        assert ingest(db, site, lines, 0).accepted == 3
    other = tmp_path / "b2.jsonl"
    write_ledger(other, tmp_path / "thpt-b" / "audit.key", "thpt-b", 1, blocks=9)
    assert (
        ingest(db, "thpt-b", other.read_bytes().splitlines(), 0).rejected[0]["kind"] == "rewritten"
    )
    line = (tmp_path / "thpt-a.jsonl").read_bytes().splitlines()[2]
    forged = line.replace(b'"school":102', b'"school":103').replace(b"107", b"108")  # one more
    assert forged != line
    assert ingest(db, "thpt-a", [forged], 0).rejected[0]["kind"] == "forged"
    done = lachan(
        "collector",
        "status",
        "--db",
        db_url,
        "--registry",
        str(sites),
        "--json",
        "--now",
        "2025-11-28T12:00:00+07:00",
    )  # two periods after the last record (05:00Z)
    assert done.returncode == 0, done.stderr
    got = {s["site"]: (s["covered"], s["chain"], s["reason"], s["last_seq"], s["incidents"])
           for s in json.loads(done.stdout)}  # fmt: skip
    assert got == {"thpt-a": (True, "valid", "", 2, {"forged": 1}),
                   "thpt-b": (False, "rewritten", "rewritten", 2, {"rewritten": 1}),
                   "thpt-c": (False, "never", "never", None, {})}  # fmt: skip
    later = lachan("collector", "status", "--db", db_url, "--registry", str(sites), "--json",
                   "--now", "2025-11-28T12:00:01+07:00")  # fmt: skip
    assert [s["chain"] for s in json.loads(later.stdout)] == ["silent", "rewritten", "never"]


def test_a_bad_db_url_or_key_file_is_one_line_naming_it(tmp_path) -> None:
    sites = registry(tmp_path, "thpt-a")
    done = lachan("collector", "status", "--db", "mysql://x", "--registry", str(sites))
    assert done.returncode == 1 and done.stderr.startswith("error: --db 'mysql://x'")
    assert "Traceback" not in done.stderr
    bad = tmp_path / "bad.pub"
    bad.write_text("hello")
    done = lachan("collector", "enroll", "thpt-a", "--public-key", str(bad), "--db",
                  f"sqlite:///{tmp_path / 'c.db'}")  # fmt: skip
    assert done.returncode == 1 and done.stderr == f"error: {bad}: not a PEM public key\n"


def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path) -> None:
    """libpq's message has a second, tab-indented line ("Is the server running ...?")."""
    sites = registry(tmp_path, "thpt-a")
    url = "postgresql://lachan:s3cret@127.0.0.1:1/collector"
    done = lachan("collector", "status", "--db", url, "--registry", str(sites))
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: --db: cannot open postgresql://…@127.0.0.1:1/collector: ")
    assert "Connection refused Is the server running" in done.stderr
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_a_registry_entry_without_id_or_kind_says_missing(tmp_path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  - {name: Trường A}\n  - {id: thpt-b}\n", encoding="utf-8")
    done = lachan("collector", "status", "--db", f"sqlite:///{tmp_path / 'c.db'}",
                  "--registry", str(sites))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {sites}: sites[0].id: missing (lower-case [a-z0-9_-])",
        f"error: {sites}: sites[1].kind: missing (school or isp)",
    ]


def test_serve_on_a_busy_port_is_one_line_naming_listen(tmp_path) -> None:
    import socket

    sites = registry(tmp_path, "thpt-a")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        done = lachan("collector", "serve", "--db", f"sqlite:///{tmp_path / 'c.db'}",
                      "--listen", address, "--registry", str(sites))  # fmt: skip
    assert (done.returncode, done.stderr) == (
        1, f"error: --listen {address}: cannot listen: Address already in use\n"
    )  # fmt: skip


def test_serve_enrols_the_registry_keys_and_takes_their_pushes(tmp_path, db_url) -> None:
    private, public = keys(tmp_path / "a")
    sites = tmp_path / "sites.yaml"
    entry = {"id": "thpt-a", "kind": "school", "district": "Quận 1",
             "public_key": inline_public(load_public_key(public))}  # fmt: skip
    sites.write_text(yaml.safe_dump({"sites": [entry]}), encoding="utf-8")
    write_ledger(tmp_path / "a.jsonl", private, "thpt-a", 2)
    with collector_serve(db_url, sites) as base:
        api = base + "/api/v1/sites/thpt-a"
        assert requests.get(api + "/acks", timeout=10).json() == {"site": "thpt-a", "acks": {}}
        reply = requests.post(api + "/records", data=(tmp_path / "a.jsonl").read_bytes(),
                              timeout=10)  # fmt: skip
        assert reply.status_code == 200 and reply.json()["acks"] == {"gw1": 1}


def test_user_add_reads_the_password_from_stdin_and_stores_only_an_argon2_hash(db_url) -> None:
    done = subprocess.run([*LACHAN, "collector", "user", "add", "kiem-tra", "--role", "auditor",
                           "--db", db_url], input="một mật khẩu dài\n", capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "kiem-tra: auditor\n"), done.stderr
    with Database(db_url).tx() as tx:
        ((role, digest),) = tx.run("SELECT role, hash FROM users WHERE name = 'kiem-tra'")
    assert role == "auditor" and digest.startswith("$argon2id$") and "một" not in digest
    short = subprocess.run([*LACHAN, "collector", "user", "add", "xem", "--role", "viewer",
                            "--db", db_url], input="ngắn\n", capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert (short.returncode, short.stderr) == (1, "error: password: at least 10 characters\n")
