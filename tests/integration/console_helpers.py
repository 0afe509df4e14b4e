"""A ``lachan serve --workers 2`` with the console, block page and HTTPS refuser on loopback,
two accounts (admin, teacher) and a compiled copy of the bundled lists; shared by the
console's HTTP and browser tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.integration.e2e_helpers import (
    InternetStub,
    compiled_state_dir,
    dig,
    free_port,
    lachan_command,
    start_lachan,
    stop_checked,
)
from tests.stub_upstream import ROOT

CHROMIUM = "/usr/bin/chromium"
GAMBLING = "188bet.vote"  # hostsvn-gambling: blocked for school, may be opened
STILL_BLOCKED = "007win.com"  # hostsvn-gambling-vn: left blocked for the browser test
ADULT = "003755.xyz"  # shadowwhisperer-adult: never opened
PASSWORDS = {"admin": "admin-pass-1", "teacher": "teacher-pass-1"}


@dataclass
class Env:
    dns: int
    console: str
    blockpage: int
    tls: int
    state: Path
    local: Path
    metrics: int  # the /metrics port


def passwd(config: Path, user: str, role: str) -> None:
    done = subprocess.run(
        [*lachan_command(), "console", "passwd", user, "--role", role, "--config", str(config)],
        input=PASSWORDS[user] + "\n", capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


class PortTaken(Exception):
    """The HTTPS refuser's port, free when chosen, was taken before lachan bound it."""


def bound_ports(log: Path, timeout: float = 30.0) -> tuple[int, int]:
    """The console's and block page's ports, from the server's log (they listen on port 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        console = re.search(r"console on http://127.0.0.1:(\d+)/", text)
        page = re.search(r"block page on http://127.0.0.1:(\d+)/", text)
        if console and page and "HTTPS to the block page refused" in text:
            return int(console.group(1)), int(page.group(1))
        if "HTTPS refuser not started" in text:
            raise PortTaken(text)
        time.sleep(0.1)
    raise AssertionError(f"the console did not start:\n{log.read_text()}")


@contextmanager
def console_server(base: Path, work: Path, workers: int = 2) -> Iterator[Env]:
    """The server, its console and accounts; ``base`` holds the shared compiled lists."""
    state = work / "state"  # a copy: allows and reviews are written beside the index
    shutil.copytree(compiled_state_dir(base), state)
    local = work / "local"
    local.mkdir()
    (local / "school.yaml").write_text("block_answer: {mode: blockpage, ttl: 1}\n")
    path = work / "lachan.yaml"
    path.write_text(_config(workers, state, local, 0, 0))
    passwd(path, "admin", "admin")
    passwd(path, "teacher", "teacher")
    with InternetStub() as stub:
        # The refuser needs a fixed port (0 turns it off): one chosen free may be taken by a
        # parallel test before lachan binds it, so a start that says so is tried again.
        for _ in range(3):
            tls, metrics = free_port(("127.0.0.1",)), free_port(("127.0.0.1",))
            config = _config(workers, state, local, tls, metrics)
            process = start_lachan(work, stub.address, config, ipv6=False, timeout=60)
            try:
                console, blockpage = bound_ports(process.stderr_path)
                break
            except PortTaken:
                process.stop()
        else:
            raise AssertionError("the HTTPS refuser found no free port in three tries")
        try:
            yield Env(process.port, f"http://127.0.0.1:{console}", blockpage, tls, state, local,
                      metrics)  # fmt: skip
        finally:
            stop_checked(process)


def _config(workers: int, state: Path, local: Path, tls: int, metrics: int) -> str:
    metrics_section = f'metrics: {{listen: "127.0.0.1:{metrics}"}}' if metrics else ""
    return f"""
{metrics_section}
site: {{id: e2e-console, kind: school}}
workers: {workers}
lists: {{state_dir: "{state}"}}
policies: {{local_dir: "{local}"}}
clients: {{default: school}}
console:
  listen: "127.0.0.1:0"
  blockpage_listen: "127.0.0.1:0"
  tls_refuse_port: {tls}
  networks: [127.0.0.1/32]
"""


def login(env: Env, user: str) -> tuple[requests.Session, str]:
    """A logged-in session and its CSRF token."""
    session = requests.Session()
    page = session.get(env.console + "/login", timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    done = session.post(env.console + "/login", timeout=10, data={
        "csrf": token.group(1), "user": user, "password": PASSWORDS[user]})  # fmt: skip
    assert done.status_code == 200 and "Trạng thái" in done.text, done.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', done.text)
    assert csrf
    return session, csrf.group(1)


def answer(env: Env, name: str) -> str:
    out = dig(env.dns, name, "A", "+short")
    return out.strip()
