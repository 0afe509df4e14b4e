"""lachan's runtime stack survives the unit's SystemCallFilter= and MemoryDenyWriteExecute=."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import require

HERE = Path(__file__).resolve().parent
UNIT = HERE.parents[1] / "systemd" / "lachan.service"
STEPS = (
    "imports index_mmap ed25519_sign uvloop_server asyncio_server "
    "worker_processes threads_and_clocks sd_notify wx_refused"
).split()


@pytest.fixture(autouse=True, scope="module")
def _systemd_analyze() -> None:
    require("systemd-analyze")  # fails every test here naming the package, never skips


def _groups() -> dict[str, list[str]]:
    """systemd's own syscall groups, as this systemd version defines them."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def _expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    for name in names:
        found |= _expand(groups[name], groups) if name.startswith("@") else {name}
    return found


def unit_allow_list() -> set[str]:
    """The system calls lachan.service allows: its allow line minus its "~" lines."""
    groups = _groups()
    allowed: set[str] = set()
    for line in UNIT.read_text().splitlines():
        if line.startswith("SystemCallFilter="):
            value = line.split("=", 1)[1]
            if value.startswith("~"):
                allowed -= _expand(value[1:].split(), groups)
            else:
                allowed |= _expand(value.split(), groups)
    return allowed


def _probe(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / "sandbox_probe.py"), ",".join(sorted(unit_allow_list()))]
        + list(extra),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=HERE,
    )


def test_unit_declares_the_filters_the_probe_applies() -> None:
    text = UNIT.read_text()
    assert "MemoryDenyWriteExecute=yes" in text and "NoNewPrivileges=yes" in text
    allowed = unit_allow_list()
    assert "setuid" not in allowed and "setrlimit" not in allowed
    assert {"sendmmsg", "epoll_wait", "clone3", "prlimit64"} <= allowed


def test_runtime_stack_runs_under_the_filters() -> None:
    result = _probe()
    done = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("ok ")]
    assert result.returncode == 0, result.stdout + result.stderr
    assert done == STEPS


def test_a_forbidden_call_is_killed() -> None:
    result = _probe("forbidden")
    assert result.returncode == -signal.SIGSYS, result.stdout + result.stderr
    assert "forbidden call survived" not in result.stdout
