"""The auditor's guide, run as written against a real PostgreSQL; the Vietnamese one matches it.

Its shell and YAML blocks run in order, with only these substitutions: the guide's database
URL → a fresh database on the tests' own cluster, ``/etc/lachan`` → a temporary folder, the
listen port ``8470`` → a free one. ``lachan collector serve`` runs in the background until the
end; a password is typed on stdin (and given as ``$PASSWORD``). A school plays its part: its
``audit.pub`` is where the registry says, and its ledger is the one the guide verifies offline.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from collector_helpers import free_port, keys, wait_http, write_ledger

from tests.integration.guide_runner import Block, blocks, logical_lines
from tests.stub_upstream import ROOT

GUIDE, TRANSLATION = "docs/auditor-guide.md", "docs/vi/huong-dan-kiem-tra.md"
GUIDE_DB = "postgresql://collector@127.0.0.1/collector"
PASSWORD = "mật-khẩu-đủ-dài"
SITE = "thpt-le-hong-phong"


def _runnable(doc: str) -> list[Block]:
    return [b for b in blocks(ROOT / doc) if b.lang in ("sh", "yaml") and b.not_run is None]


class AuditorRun:
    """One auditor following the guide on a temporary root."""

    def __init__(self, root: Path, db_url: str) -> None:
        self.root, self.db_url, self.port = root, db_url, free_port()
        self.work = root / "work"
        self.work.mkdir()
        self.output: list[str] = []
        self.server: subprocess.Popen[str] | None = None
        self.env = {**os.environ, "PASSWORD": PASSWORD,
                    "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # fmt: skip

    def substitute(self, text: str) -> str:
        for old, new in ((GUIDE_DB, self.db_url), ("/etc/lachan", f"{self.root}/etc/lachan"),
                         ("127.0.0.1:8470", f"127.0.0.1:{self.port}")):  # fmt: skip
            text = text.replace(old, new)
        return text

    def run(self, block: Block) -> None:
        if block.lang == "yaml":
            assert set(yaml.safe_load(block.text)) == {"sites"}, block.line
            (self.root / "etc/lachan/sites.yaml").write_text(self.substitute(block.text))
            return
        for line in logical_lines(block.text):
            words = shlex.split(self.substitute(line), comments=True)
            if words[:3] == ["lachan", "collector", "serve"]:
                self.server = subprocess.Popen(words, env=self.env, text=True,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
                wait_http(f"http://127.0.0.1:{self.port}/login")
            elif words:
                done = subprocess.run(["bash", "-c", self.substitute(line)], input=PASSWORD + "\n",
                                      capture_output=True, text=True, timeout=120, cwd=self.work,
                                      env=self.env)  # fmt: skip
                assert done.returncode == 0, f"line {block.line}: {line}\n{done.stderr}"
                self.output.append(done.stdout)

    def stop(self) -> str:
        if self.server is None:
            return ""
        self.server.terminate()
        _, err = self.server.communicate(timeout=30)
        return err


def _login(base: str, name: str) -> requests.Session:
    http = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get(base + "/login", timeout=10).text)
    assert csrf
    reply = http.post(base + "/login", timeout=30, allow_redirects=False,
                      data={"csrf": csrf.group(1), "name": name, "password": PASSWORD})  # fmt: skip
    assert reply.status_code == 302 and reply.headers["Location"] == "/", name
    return http


def test_an_auditor_following_the_guide_enrols_a_school_and_sees_its_records(
    tmp_path: Path, pg
) -> None:  # type: ignore[no-untyped-def]
    private, public = keys(tmp_path / "school")
    (tmp_path / "etc/lachan/keys").mkdir(parents=True)
    shutil.copy(public, tmp_path / "etc/lachan/keys/thpt-lhp.pub")  # sent to the province
    run = AuditorRun(tmp_path, pg.new_database())
    write_ledger(run.work / "ledger.jsonl", private, SITE, 3)  # a copy of the school's ledger
    shutil.copy(public, run.work / "thpt-lhp.pub")
    try:
        for block in _runnable(GUIDE):
            run.run(block)
        assert run.server is not None, "the guide never started the collector"
        base = f"http://127.0.0.1:{run.port}"
        push = subprocess.run([sys.executable, "-m", "resolver.cli", "report", "push", "--config",
                               str(_school_config(tmp_path, private, run.work)), "--collector",
                               base], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert push.returncode == 0, push.stderr
        auditor, viewer = _login(base, "nguyen-van-a"), _login(base, "tran-thi-b")
        page = auditor.get(f"{base}/site/{SITE}", timeout=10).text
        pdf = auditor.get(base + "/export.pdf", timeout=60)
        refused = viewer.get(base + "/export.pdf", timeout=60).status_code
    finally:
        err = run.stop()
    assert "Traceback" not in err, err
    out = "".join(run.output)
    assert re.search(r"ledger\.jsonl: OK, 3 records, site thpt-le-hong-phong", out), out
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "THPT Lê Hồng Phong (thpt-le-hong-phong)" in text and "Số thứ tự cuối 2" in text
    assert pdf.headers["Content-Type"] == "application/pdf" and refused == 403
    status = subprocess.run([sys.executable, "-m", "resolver.cli", "collector", "status", "--db",
                             run.db_url, "--registry", str(tmp_path / "etc/lachan/sites.yaml"),
                             "--json", "--now", "2025-11-28T10:10:00+07:00"],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    (row,) = json.loads(status.stdout)
    assert (row["site"], row["chain"], row["last_seq"]) == (SITE, "valid", 2)


def _school_config(tmp: Path, key: Path, work: Path) -> Path:
    config = tmp / "school.yaml"
    config.write_text(f"site: {{id: {SITE}, kind: school}}\n"
                      f"audit: {{ledger: {work / 'ledger.jsonl'}, key: {key}}}\n")  # fmt: skip
    return config


def _steps(doc: str) -> list[object]:
    """Each block's commands (comments dropped: they are translated) or parsed YAML, in order;
    YAML comments are dropped by the parser."""
    out: list[object] = []
    for block in blocks(ROOT / doc):
        if block.lang == "yaml":
            out.append((yaml.safe_load(block.text), block.not_run is None))
        elif block.lang == "sh":
            lines = [shlex.join(shlex.split(line, comments=True))
                     for line in logical_lines(block.text)]  # fmt: skip
            out.append(([line for line in lines if line], block.not_run is None))
    return out


def test_the_vietnamese_auditors_guide_has_the_same_commands_and_registry() -> None:
    assert _steps(TRANSLATION) == _steps(GUIDE)
