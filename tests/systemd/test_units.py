"""The shipped systemd files: verify cleanly, score ≤ 2.0 exposure, and install as documented."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.tools import require

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNITS = ("lachan.service", "lachan-lists.service", "lachan-lists.timer",
         "lachan-report-push.service", "lachan-report-push.timer")  # fmt: skip
MAX_EXPOSURE = 2.0  # Debian's dnsdist scores 2.1, pdns-recursor 2.3, unbound 9.6


@pytest.fixture(autouse=True, scope="module")
def _systemd_analyze() -> None:
    require("systemd-analyze")  # fails every test here naming the package, never skips


def _stub(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway filesystem root: the distribution's units, stub commands, and ours.

    `verify` resolves ExecStart= commands and dependencies inside --root, so nothing is
    installed on the host and no root-only side effect happens.
    """
    root = tmp_path_factory.mktemp("root")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for command in ("usr/local/bin/lachan", "usr/bin/kill", "usr/bin/systemctl"):
        _stub(root / command)
    (root / "bin").symlink_to("usr/bin")
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(SYSTEMD / unit, root / "etc/systemd/system" / unit)
    return root


@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies_without_a_single_warning(fake_root: Path, unit: str) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={fake_root}", "--man=no", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def _exposure(unit_file: Path) -> float:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_COLORS": "0"},
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


@pytest.mark.parametrize(
    "unit", ["lachan.service", "lachan-lists.service", "lachan-report-push.service"]
)
def test_exposure_score_beats_debian_resolvers(unit: str) -> None:
    score = _exposure(SYSTEMD / unit)
    print(f"systemd-analyze security --offline=yes {unit}: exposure {score}")
    assert score <= MAX_EXPOSURE


def test_the_exposure_check_can_fail(tmp_path: Path) -> None:
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/bin/true\n")
    assert _exposure(bare) > MAX_EXPOSURE


def _directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (SYSTEMD / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_service_keeps_the_contract_with_the_server() -> None:
    unit = _directives("lachan.service")
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecStartPre"] == ["lachan check-config /etc/lachan/lachan.yaml"]
    assert unit["ExecStart"] == ["lachan serve --config /etc/lachan/lachan.yaml"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["WatchdogSec"] == ["30"] and unit["Restart"] == ["on-failure"]
    assert unit["CapabilityBoundingSet"] == unit["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert unit["LimitNOFILE"] == ["65536"] and unit["UMask"] == ["0077"]


def test_sysusers_creates_a_locked_system_user(tmp_path: Path) -> None:
    require("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD / "lachan.sysusers")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    entry = next(
        line.split(":")
        for line in (tmp_path / "etc/passwd").read_text().splitlines()
        if line.startswith("lachan:")
    )
    assert int(entry[2]) < 1000  # a system account
    assert entry[5:] == ["/var/lib/lachan", "/usr/sbin/nologin"]
    assert "lachan:" in (tmp_path / "etc/group").read_text()


def test_tmpfiles_lays_out_the_documented_paths(tmp_path: Path) -> None:
    require("systemd-tmpfiles")
    require("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD / "lachan.sysusers")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        ["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(SYSTEMD / "lachan.tmpfiles")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    uid = int(_passwd_field(tmp_path, 2))
    for path, mode, owner in (
        ("etc/lachan", 0o755, 0),
        ("var/lib/lachan", 0o750, uid),
        ("etc/lachan/policies.d", 0o755, 0),
        ("var/lib/lachan/sources", 0o750, uid),
        ("var/lib/lachan/index", 0o750, uid),
        ("var/lib/lachan/ledger", 0o750, uid),
    ):
        info = (tmp_path / path).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (mode, owner), path


def _passwd_field(root: Path, index: int) -> str:
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.startswith("lachan:"):
            return line.split(":")[index]
    raise AssertionError("no lachan user")


def test_timer_refreshes_daily_with_a_spread() -> None:
    timer = _directives("lachan-lists.timer")
    assert timer["OnCalendar"] == ["daily"] and timer["Persistent"] == ["yes"]
    assert timer["RandomizedDelaySec"] == ["2h"]
    lists = _directives("lachan-lists.service")
    assert lists["ExecStart"] == ["lachan lists update --config /etc/lachan/lachan.yaml"]


def test_report_push_runs_hourly_as_the_lachan_user() -> None:
    timer = _directives("lachan-report-push.timer")
    assert timer["OnCalendar"] == ["*-*-* *:05:00"] and timer["Persistent"] == ["yes"]
    push = _directives("lachan-report-push.service")
    assert push["ExecStart"] == ["lachan report push --config /etc/lachan/lachan.yaml"]
    assert push["User"] == ["lachan"] and push["Type"] == ["oneshot"]
