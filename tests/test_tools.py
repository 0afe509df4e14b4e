"""tests/tools.py and tests/strict_skips.py: every tool is installable, and CI fails on a skip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import PACKAGES, missing_message

ROOT = Path(__file__).resolve().parents[1]
_CALL = re.compile(r"""(?:shutil\.which|require)\(\s*["']([a-z0-9][a-z0-9_.-]*)["']""")


def _listed_packages() -> set[str]:
    text = (ROOT / "scripts" / "test-packages.txt").read_text(encoding="utf-8")
    return {line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"}


def test_every_tool_package_is_installed_by_the_test_tools_script() -> None:
    assert set(PACKAGES.values()) - _listed_packages() == set()


def test_every_tool_the_tests_look_up_has_a_package() -> None:
    looked_up = {
        name
        for path in (ROOT / "tests").rglob("*.py")
        for name in _CALL.findall(path.read_text(encoding="utf-8"))
    }
    assert "systemd-analyze" in looked_up  # the pattern sees the calls it is meant to see
    assert looked_up - set(PACKAGES) - {"chromium-browser"} == set()


def test_a_missing_tool_names_its_package() -> None:
    assert missing_message("promtool").endswith("(apt-get install prometheus)")


_SAMPLE = """
import pytest

def test_ok():
    pass

@pytest.mark.skipif(True, reason={reason!r})
def test_skipped():
    pass
"""


def _run_sample(tmp_path: Path, reason: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(_SAMPLE.format(reason=reason), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.strict_skips",
        "-p",
        "no:cacheprovider",
    ]
    args += ["--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("reason", "ci", "status"),
    [
        ("dnsdist is not installed", "true", 1),
        ("platform: no IPv6 loopback", "true", 0),
        ("dnsdist is not installed", None, 0),
    ],
)
def test_ci_fails_the_run_on_a_skip_unless_it_is_a_platform_fact(
    tmp_path: Path, reason: str, ci: str | None, status: int
) -> None:
    done = _run_sample(tmp_path, reason, ci)
    assert done.returncode == status, done.stdout + done.stderr
    named = "test_sample.py::test_skipped: dnsdist is not installed" in done.stdout
    assert named == (status == 1), done.stdout
