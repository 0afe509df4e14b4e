"""Graceful stop (issue 6): SIGTERM while slow upstream queries are in flight.

They are answered within the grace period, the process exits 0, and the audit ledger holds
the open period (signed, verifiable, counting those queries). One process and two workers.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from tests.integration.ops_helpers import ask, signal_process, start_lachan, wait_until
from tests.stub_upstream import StubUpstream, lachan_command

SLOW = 1.0  # the stub's delay: inside lachan's 2 s drain, inside the 3 s upstream timeout
IN_FLIGHT = 6

CONFIG = """\
site: {{id: ops-stop, kind: school}}
upstream: {{timeout: 3}}
audit: {{ledger: {ledger}, key: {key}, period: 3600}}
"""


def _keygen(directory: Path) -> tuple[Path, Path]:
    subprocess.run(
        lachan_command() + ["audit", "keygen", "--out", str(directory)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory / "audit.key", directory / "audit.pub"


def _ask_in_background(port: int, names: list[str]) -> tuple[list[threading.Thread], dict]:
    """One thread per query (half over TCP); replies land in the returned dict by name."""
    replies: dict[str, dns.message.Message | Exception] = {}

    def one(name: str, tcp: bool) -> None:
        try:
            replies[name] = ask(port, name, tcp=tcp, timeout=6)
        except Exception as exc:  # recorded, then asserted on by the test
            replies[name] = exc

    threads = [
        threading.Thread(target=one, args=(name, i % 2 == 1), daemon=True)
        for i, name in enumerate(names)
    ]
    for thread in threads:
        thread.start()
    return threads, replies


@pytest.mark.parametrize("workers", [None, 2], ids=["one-process", "two-workers"])
def test_sigterm_answers_in_flight_queries_then_exits_0(
    tmp_path: Path, workers: int | None
) -> None:
    key, public = _keygen(tmp_path / "keys")
    ledger = tmp_path / "ledger" / "audit.jsonl"
    ledger.parent.mkdir()
    with StubUpstream(seed=81) as stub:
        config = CONFIG.format(ledger=ledger, key=key)
        server = start_lachan(tmp_path, stub.address, config, workers=workers)
        assert ask(server.port, "warm.example.test").answer  # one answered before the stop
        stub.mode, stub.delay = "slow", SLOW
        names = [f"slow-{i}.example.test" for i in range(IN_FLIGHT)]
        threads, replies = _ask_in_background(server.port, names)
        # Every query has reached the stub (so it is in flight in lachan) before the stop.
        assert wait_until(lambda: all(stub.count(n) for n in names), 5, 0.02)
        stopped_at = time.monotonic()
        signal_process(server, signal.SIGTERM)
        assert server.process is not None
        code = server.process.wait(timeout=15)
        took = time.monotonic() - stopped_at
        for thread in threads:
            thread.join(timeout=10)
    assert code == 0, server.stderr()
    assert took < 5, f"stop took {took:.1f} s"
    for name in names:
        reply = replies.get(name)
        assert isinstance(reply, dns.message.Message), (name, reply, server.stderr()[-2000:])
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer, reply.to_text()
    _check_ledger(ledger, public, IN_FLIGHT + 1)
    assert "Traceback" not in server.stderr()


def _check_ledger(ledger: Path, public: Path, queries: int) -> None:
    """The open period was closed into one signed record counting every answered query."""
    lines = ledger.read_text().splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    # The readiness probe (a FORMERR) is counted too; the DNS answers are the "allowed" ones.
    assert record["answers"]["allowed"]["none"]["under16"] == queries, record
    assert record["site"] == "ops-stop"
    verified = subprocess.run(
        lachan_command() + ["audit", "verify", str(ledger), "--public-key", str(public)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
