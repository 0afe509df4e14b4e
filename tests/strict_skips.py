"""With CI=true any skipped test fails the run, except a documented platform fact.

A missing tool is never a reason to skip (tests/tools.py fails instead); a skip that slipped in
would hide a whole area from CI, so CI turns it into exit status 1 and names it. The only skips
allowed are facts about the platform that installing packages cannot change; their reasons begin
with ``platform:`` (no IPv6 loopback, no /proc, mounting or nft denied to the container).
"""

from __future__ import annotations

import os

import pytest

PLATFORM = "platform:"
_skipped: list[tuple[str, str]] = []


def _reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _record(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _reason(report)
        if not reason.startswith(PLATFORM):
            _skipped.append((report.nodeid, reason))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record(report)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") != "true" or not _skipped:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"CI=true: {len(_skipped)} skipped test(s) fail the run:"]
    lines += [f"  {nodeid}: {reason}" for nodeid, reason in _skipped]
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True)
        else:
            print(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
