"""A full disk (a 256 KiB tmpfs) under the compiled index and under the audit ledger: clear
errors, the previous index keeps serving, and the ledger stays verifiable."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from resolver.audit.ledger import FilterState
from resolver.audit.trail import AuditTrail
from tests.conftest import LachanFactory
from tests.stub_upstream import ROOT, LachanProcess, lachan_command, raw_udp

CATALOGUE = """
version: 1
categories:
  - id: adult
    name_vi: Người lớn
    name_en: Adult
    description: disk-full test
    default: true
    sources:
      - id: disk-adult
        format: domains
        bundled: adult.txt
        licence: CC0-1.0
"""
STATE = FilterState("sha256:test", 0, "sha256:policy", "test")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted for the test (unmounted after); skipped where mount is denied."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"platform: mounting a tmpfs is denied here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(mount: Path) -> Path:
    """Write a filler file until the filesystem says ENOSPC; returns it (delete to free)."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for _ in range(4096):  # 16 MiB at most: far beyond the 256 KiB tmpfs
            os.write(fd, b"\0" * 4096)
        raise AssertionError(f"{mount} never filled")
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def lists_compile(config: Path) -> subprocess.CompletedProcess[str]:
    args = [*lachan_command(), "lists", "compile", "--config", str(config)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)


def rcode(port: int, name: str) -> str | None:
    reply = raw_udp(port, dns.message.make_query(name, "A").to_wire(), timeout=2.0)
    return None if reply is None else dns.rcode.to_text(dns.message.from_wire(reply).rcode())


# -- the compiled index ----------------------------------------------------------------------
@pytest.fixture
def lists_config(full_disk: Path, tmp_path: Path) -> Path:
    """A config whose lists state dir is the small tmpfs, its index compiled while there was room."""
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "adult.txt").write_text("blocked.example.test\n", encoding="utf-8")
    config = tmp_path / "lachan.yaml"
    catalogue = tmp_path / "catalogue.yaml"
    config.write_text(f"lists: {{catalogue: {catalogue}, state_dir: {full_disk}}}\n")
    first = lists_compile(config)
    assert first.returncode == 0, first.stdout + first.stderr
    return config


def fill_and_change_list(full_disk: Path, config: Path) -> None:
    """Fill the disk, then change the list so that the next load must compile a new index."""
    fill(full_disk)
    (config.parent / "adult.txt").write_text(
        "blocked.example.test\nnewly-blocked.example.test\n", encoding="utf-8"
    )


def _sighup_into_full_disk(
    full_disk: Path, lists_config: Path, lachan: LachanFactory
) -> LachanProcess:
    server = lachan(config=lists_config.read_text(), ipv6=False, expect_errors=True)
    assert rcode(server.port, "www.blocked.example.test") == "NXDOMAIN"
    assert rcode(server.port, "www.example.test") == "NOERROR"
    fill_and_change_list(full_disk, lists_config)
    os.kill(server.process.pid, signal.SIGHUP)  # type: ignore[union-attr]
    _wait_for_log(server.stderr, "No space left on device", 20.0)
    return server


def test_sighup_compiling_into_a_full_disk_keeps_the_old_index(
    full_disk: Path, lists_config: Path, lachan: LachanFactory
) -> None:
    server = _sighup_into_full_disk(full_disk, lists_config, lachan)
    assert server.alive()
    assert rcode(server.port, "www.blocked.example.test") == "NXDOMAIN"  # the old index serves
    assert rcode(server.port, "newly-blocked.example.test") == "NOERROR"
    assert rcode(server.port, "www.example.test") == "NOERROR"


def test_sighup_compiling_into_a_full_disk_reports_a_failed_reload(
    full_disk: Path, lists_config: Path, lachan: LachanFactory
) -> None:
    server = _sighup_into_full_disk(full_disk, lists_config, lachan)
    time.sleep(0.5)
    log = server.stderr()
    assert "reload failed" in log and "Traceback" not in log, log


def test_lists_compile_into_a_full_disk_is_one_clear_line(
    full_disk: Path, lists_config: Path
) -> None:
    fill_and_change_list(full_disk, lists_config)
    failed = lists_compile(lists_config)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output
    assert "No space left on device" in output, output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    leftovers = [p.name for p in (full_disk / "index").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], "a failed compile left its partial file filling the disk"


def _wait_for_log(read: object, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in read():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never logged:\n{read()}")  # type: ignore[operator]


# -- the audit ledger ------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def verify(ledger: Path, keys: Path) -> subprocess.CompletedProcess[str]:
    args = [*lachan_command(), "audit", "verify", "--public-key", str(keys / "audit.pub")]
    return subprocess.run(
        [*args, str(ledger)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    done = subprocess.run(
        [*lachan_command(), "audit", "keygen", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_ledger_appends_through_a_full_disk_stay_verifiable(full_disk: Path, keys: Path) -> None:
    clock = Clock()
    ledger = full_disk / "ledger.jsonl"
    trail = AuditTrail.open(ledger, keys / "audit.key", site="hanoi-school", site_kind="school",
                            instance="a", state=lambda: STATE, period=60, clock=clock)  # fmt: skip
    trail.tick()
    filler = fill(full_disk)
    failures = 0
    for _ in range(12):  # ~600-byte records: the ledger's last 4 KiB page fills within 8
        clock.now += 60
        trail.counts.add_many({("adult", "block", "school"): 3})
        try:
            trail.tick()
        except OSError:
            failures += 1
    assert failures, "the disk never filled under the ledger"
    filler.unlink()
    clock.now += 60
    trail.tick()  # room again: the chain must go on from the last good record
    trail.close()
    checked = verify(ledger, keys)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _stop_with_full_ledger_disk(
    full_disk: Path, keys: Path, lachan: LachanFactory
) -> tuple[int | None, str, Path]:
    ledger = full_disk / "ledger.jsonl"
    config = f"audit: {{ledger: {ledger}, key: {keys / 'audit.key'}, period: 60}}\n"
    server = lachan(config=config, ipv6=False, expect_errors=True)
    assert rcode(server.port, "www.example.test") == "NOERROR"
    fill(full_disk)
    assert rcode(server.port, "again.example.test") == "NOERROR"
    code = server.stop()  # the shutdown appends the open period: onto a full disk
    return code, server.stderr(), ledger


def test_server_stopping_with_the_ledger_on_a_full_disk_keeps_it_verifiable(
    full_disk: Path, keys: Path, lachan: LachanFactory
) -> None:
    code, log, ledger = _stop_with_full_ledger_disk(full_disk, keys, lachan)
    assert "Traceback" not in log, log
    assert code is not None and code >= 0, "killed by a signal, not stopped"
    # Its one record (the shutdown's) found no room: nothing torn may be left behind. Chains
    # that continue through a full disk are checked in the test above.
    assert ledger.stat().st_size == 0, ledger.read_bytes()[:200]


def test_server_stopping_with_the_ledger_on_a_full_disk_exits_zero(
    full_disk: Path, keys: Path, lachan: LachanFactory
) -> None:
    code, log, _ = _stop_with_full_ledger_disk(full_disk, keys, lachan)
    assert code == 0 and "cannot serve" not in log, log
