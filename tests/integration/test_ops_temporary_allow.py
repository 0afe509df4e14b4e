"""A teacher's temporary allow reaches every worker within seconds, and ends by itself
(issue 18): `lachan allow` then dig, revocation, and an expiry with a short test-written end."""

from __future__ import annotations

import getpass
import json
import subprocess
import time
from pathlib import Path

import dns.edns
import dns.message
import dns.query

from resolver.allows import FILE_NAME
from tests.integration.ops_helpers import seed_state_dir, start_lachan, wait_until
from tests.stub_upstream import ROOT, StubUpstream, lachan_command

CONFIG = """\
site: {{id: thcs-test, kind: school}}
clients: {{default: school}}
lists: {{state_dir: "{state}"}}
"""
GAME = "fortnite.com"  # listed in games, which the school profile blocks all day


def allow(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*lachan_command(), "allow", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def is_blocked(port: int, name: str) -> bool:
    """Whether lachan blocked the name (EDE in the answer), not whether it exists upstream:
    the stub upstream answers NXDOMAIN for names outside example.test, as a recursor would."""
    query = dns.message.make_query(name, "A", use_edns=0)
    reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
    return any(option.otype == dns.edns.EDE for option in reply.options)


def answered(port: int, name: str) -> bool:
    """Allowed on every try (two workers share the port: each try may reach either)."""
    return not any(is_blocked(port, name) for _ in range(6))


def blocked(port: int, name: str) -> bool:
    return all(is_blocked(port, name) for _ in range(6))


def test_a_temporary_allow_opens_a_site_on_every_worker_until_revoked(tmp_path: Path) -> None:
    text = CONFIG.format(state=seed_state_dir(tmp_path))
    config = tmp_path / "lachan.yaml"
    config.write_text(text)
    with StubUpstream(seed=96) as stub:
        server = start_lachan(tmp_path, stub.address, text, workers=2)
        try:
            assert blocked(server.port, GAME)
            allow(config, GAME, "--for", "2h", "--profile", "school", "--reason", "bài giảng")
            assert wait_until(lambda: answered(server.port, GAME), 10)
            assert wait_until(lambda: answered(server.port, "www." + GAME), 5)
            allow(config, "--revoke", GAME)
            assert wait_until(lambda: blocked(server.port, GAME), 10)
        finally:
            server.stop()
    assert "Traceback" not in server.stderr()


def test_an_allow_ends_by_itself_when_its_time_is_up(tmp_path: Path) -> None:
    text = CONFIG.format(state=seed_state_dir(tmp_path))
    with StubUpstream(seed=97) as stub:
        server = start_lachan(tmp_path, stub.address, text, workers=2)
        try:
            assert blocked(server.port, GAME)
            # The test's clock: an allow written straight into the file, ending in 10 s (the
            # CLI and console refuse less than 30 min; the server honours what the file says).
            now = time.time()
            entry = {"name": GAME, "profile": "school", "until": now + 10, "reason": "test",
                     "by": "test", "created": now}  # fmt: skip
            (tmp_path / FILE_NAME).write_text(json.dumps({"allows": [entry]}))
            assert wait_until(lambda: answered(server.port, GAME), 8)
            assert wait_until(lambda: blocked(server.port, GAME), 15)
            assert time.time() >= now + 10
        finally:
            server.stop()


def test_the_ledger_counts_an_allow_under_its_category_and_names_nothing(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    subprocess.run([*lachan_command(), "audit", "keygen", "--out", str(keys)], check=True,
                   capture_output=True, timeout=60, cwd=ROOT)  # fmt: skip
    ledger = tmp_path / "ledger" / "audit.jsonl"
    ledger.parent.mkdir()
    text = CONFIG.format(state=seed_state_dir(tmp_path)) + (
        f"audit: {{ledger: '{ledger}', key: '{keys / 'audit.key'}', period: 3600}}\n"
    )
    config = tmp_path / "lachan.yaml"
    config.write_text(text)
    reason = "bài giảng về trò chơi điện tử"
    with StubUpstream(seed=98) as stub:
        server = start_lachan(tmp_path, stub.address, text, workers=2)
        try:
            allow(config, GAME, "--for", "2h", "--profile", "school", "--reason", reason)
            assert wait_until(lambda: answered(server.port, GAME), 10)
        finally:
            assert server.stop() == 0  # a graceful stop records the open period
    data = ledger.read_bytes()
    last = json.loads(data.splitlines()[-1])
    assert last["temporary_allows"] == {"format": 1, "granted": {"games": 1}}, last
    for needle in (GAME, "fortnite", reason, getpass.getuser()):
        assert needle.encode() not in data, needle
    done = subprocess.run(
        [*lachan_command(), "audit", "verify", str(ledger), "--public-key", str(keys / "audit.pub")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{ledger}: temporary allows granted: games 1" in done.stdout
