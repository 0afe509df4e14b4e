"""Ledger writing: chain, restart, torn-tail recovery, locking, real kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_helpers import STATE, T0, FakeClock, fill

from resolver.audit.accumulator import PeriodCounts
from resolver.audit.canonical import GENESIS
from resolver.audit.keys import load_private_key
from resolver.audit.ledger import Ledger, tail_problem
from resolver.audit.verify import verify_ledger
from resolver.errors import AuditError


def test_records_chain_and_verify(make_ledger, public_key) -> None:
    path = make_ledger(hours=4)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4
    first, second = json.loads(lines[0]), json.loads(lines[1])
    assert first["prev"] == GENESIS and first["seq"] == 0
    assert first["period_start"] == "2025-11-28T00:00:00Z"
    assert first["period_end"] == "2025-11-28T01:00:00Z"
    assert first["answers"]["blocked"] == {"adult": {"school": 3}}  # zero counts are omitted
    assert first["queries"] == 103 and first["safe_search"] == {"google": 2}
    assert second["seq"] == 1 and second["prev"] != GENESIS
    result = verify_ledger(path, public_key)
    assert result.ok and len(result.records) == 4 and result.signed


def test_restart_continues_the_chain(make_ledger, private_key, public_key) -> None:
    path = make_ledger(hours=2)
    with Ledger.open(path, private_key, site="thpt-a", site_kind="school", instance="gw1") as led:
        assert led.last_period_end == T0 + 2 * 3600
        fill(led, FakeClock(T0 + 2 * 3600 + 120), 2)
    result = verify_ledger(path, public_key)
    assert result.ok and [r.seq for r in result.records] == [0, 1, 2, 3]
    # The first period after a restart starts when the process came back, not on the hour.
    assert result.records[2].period_start == T0 + 2 * 3600 + 120


def test_overlapping_period_is_refused(make_ledger, private_key) -> None:
    path = make_ledger(hours=1)
    with Ledger.open(path, private_key, site="thpt-a", site_kind="school", instance="gw1") as led:
        with pytest.raises(AuditError, match="overlaps"):
            led.append(PeriodCounts(T0, T0 + 60, {}, {}), STATE)


def test_torn_tail_is_cut_saved_and_signed_into_the_next_record(
    make_ledger, private_key, public_key
) -> None:
    path = make_ledger(hours=3)
    whole = path.read_bytes()
    path.write_bytes(whole[:-40])  # a crash in the middle of writing line 3
    broken = verify_ledger(path, public_key)
    assert broken.problem is not None and broken.problem.line == 3
    assert "torn" in broken.problem.message and len(broken.records) == 2
    with Ledger.open(path, private_key, site="thpt-a", site_kind="school", instance="gw1") as led:
        cut = whole[:-40].rfind(b"\n") + 1
        assert led.recovered["offset"] == cut and led.last_period_end == T0 + 2 * 3600
        side = path.with_name(f"{path.name}.torn-{cut}")
        assert side.read_bytes() == whole[cut:-40]
        fill(led, FakeClock(T0 + 3 * 3600), 1)
    result = verify_ledger(path, public_key)
    assert result.ok and len(result.records) == 3
    assert result.records[2].recovered["bytes"] == len(whole[cut:-40])
    assert len(result.notices) == 1 and "torn" in result.notices[0]


def test_tail_problem_says_what_open_would_refuse_without_touching_the_file(
    make_ledger, private_key, tmp_path: Path
) -> None:
    path = make_ledger(hours=2)
    whole = path.read_bytes()
    assert tail_problem(path, private_key, "thpt-a", "gw1") is None
    path.write_bytes(whole[:-40])  # a torn tail: open cuts it and keeps it aside, so no problem
    assert tail_problem(path, private_key, "thpt-a", "gw1") is None
    assert path.read_bytes() == whole[:-40]
    path.write_bytes(whole)
    assert tail_problem(path, private_key, "thpt-b", "gw1") == (
        f"{path}: ledger belongs to site thpt-a instance gw1, not thpt-b instance gw1"
    )
    from resolver.audit.keys import write_keypair

    other = load_private_key(write_keypair(tmp_path / "other")[0])
    assert tail_problem(path, other, "thpt-a", "gw1") == (
        f"{path}:2: last record is not signed by this key"
    )
    assert tail_problem(tmp_path / "absent.jsonl", other, "thpt-a", "gw1") is None
    assert path.read_bytes() == whole


def test_second_writer_is_locked_out(make_ledger, private_key) -> None:
    path = make_ledger(hours=1)
    with Ledger.open(path, private_key, site="thpt-a", site_kind="school", instance="gw1"):
        with pytest.raises(AuditError, match="locked"):
            Ledger.open(path, private_key, site="thpt-a", site_kind="school", instance="gw1")


def test_wrong_identity_or_key_is_refused(make_ledger, private_key, tmp_path: Path) -> None:
    path = make_ledger(hours=1)
    with pytest.raises(AuditError, match="belongs to site thpt-a"):
        Ledger.open(path, private_key, site="thpt-b", site_kind="school", instance="gw1")
    from resolver.audit.keys import write_keypair

    other = load_private_key(write_keypair(tmp_path / "other")[0])
    with pytest.raises(AuditError, match=":1: last record is not signed by this key"):
        Ledger.open(path, other, site="thpt-a", site_kind="school", instance="gw1")


_WRITER = """
import sys, time
from pathlib import Path
from resolver.audit.accumulator import PeriodCounts
from resolver.audit.keys import load_private_key
from resolver.audit.ledger import FilterState, Ledger
key = load_private_key(Path(sys.argv[2]))
state = FilterState("sha256:i", 0, "sha256:p", "0.1.0")
with Ledger.open(Path(sys.argv[1]), key, site="s1", site_kind="isp", instance="a") as led:
    start = (led.last_period_end or 1_700_000_000)
    for i in range(100000):
        counts = PeriodCounts(start + i * 60, start + i * 60 + 60, {("allowed", "none", "p"): i}, {})
        led.append(counts, state)
        if i == 5:
            print("ready", flush=True)
"""


def test_kill_9_mid_stream_leaves_a_verifiable_prefix(tmp_path, keydir, public_key) -> None:
    path = tmp_path / "crash.jsonl"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(keydir / "audit.key")],
        stdout=subprocess.PIPE, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    result = verify_ledger(path, public_key)
    # Every complete line verifies; at worst the very last line is torn.
    assert len(result.records) > 5
    assert result.ok or (result.problem and "torn" in result.problem.message)
    key = load_private_key(keydir / "audit.key")
    with Ledger.open(path, key, site="s1", site_kind="isp", instance="a") as led:
        led.append(PeriodCounts(led.last_period_end or 0, (led.last_period_end or 0) + 60,
                                {}, {}), STATE)  # fmt: skip
    after = verify_ledger(path, public_key)
    assert after.ok and len(after.records) == len(result.records) + 1
