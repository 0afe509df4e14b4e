"""The real ``lachan serve`` runs under lachan.service's seccomp and W^X filters.

tests/systemd/sandbox_probe.py installs the unit's SystemCallFilter= and
MemoryDenyWriteExecute= on itself; with LACHAN_SANDBOX_SERVE=1 its workload then starts the
real server (inheriting the filters, as under systemd), one process and then two workers:
each notifies READY, answers the canary and a forwarded query, reloads on SIGHUP
(RELOADING then READY) and exits 0 on SIGTERM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import require

SYSTEMD_TESTS = Path(__file__).resolve().parents[1] / "systemd"
sys.path.insert(0, str(SYSTEMD_TESTS))

from test_sandbox import unit_allow_list  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _systemd_analyze() -> None:
    require("systemd-analyze")  # fails every test here naming the package, never skips


def test_lachan_serve_answers_under_the_units_filters() -> None:
    result = subprocess.run(
        [sys.executable, str(SYSTEMD_TESTS / "sandbox_probe.py"), ",".join(unit_allow_list())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=SYSTEMD_TESTS,
        env=dict(os.environ, LACHAN_SANDBOX_SERVE="1"),
    )
    done = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("ok ")]
    assert result.returncode == 0, result.stdout + result.stderr
    assert done[-1:] == ["lachan_serve"], result.stdout + result.stderr
