"""``lachan lists update`` offline and half-online: fast, one full line per source, honest status."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from list_http import serving, write_catalogue

from resolver.commands.lists import lists

OFFLINE = "lachan-offline.invalid"


@pytest.fixture
def server() -> Iterator[str]:
    with serving() as base:
        yield base


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names under .invalid do not resolve (the internet's DNS, faked); count the lookups."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: connections refused


def _lines_for(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("s") and line[1:3].isdigit()]


def test_offline_update_is_fast_exits_2_and_says_which_copy_is_in_force(
    tmp_path: Path, lookups: list[str]
) -> None:
    port = _closed_port()
    urls = [f"http://{OFFLINE}/l{i}" for i in range(10)]
    urls += [f"http://127.0.0.1:{port}/l{i}" for i in range(10)]
    opts = write_catalogue(tmp_path, urls, bundled=15)
    t0 = time.monotonic()
    out = CliRunner().invoke(lists, ["update", "--force", *opts])
    took = time.monotonic() - t0
    assert out.exit_code == 2, out.output
    assert took < 15, took
    lines = _lines_for(out.output)
    assert sorted(line.split()[0] for line in lines) == [f"s{i:02}" for i in range(20)]
    assert all(" failed " in line for line in lines)
    dns = [line for line in lines if OFFLINE in line]
    assert len(dns) == 10 and all("Failed to resolve" in line for line in dns)
    assert all(
        line.rstrip().endswith(("[in force: bundled]", "[in force: none]")) for line in lines
    )
    assert sum("[in force: bundled]" in line for line in lines) == 15
    refused = [line for line in lines if f"port={port}" in line]
    assert len(refused) == 10 and all("Connection refused" in line for line in refused)
    assert lookups == [OFFLINE] * 10  # one lookup per source: no retry after a DNS failure
    assert "..." not in out.output and "Traceback" not in out.output
    assert "index: " in out.output


def test_mixed_sources_exit_1_and_the_index_is_built(tmp_path: Path, server: str) -> None:
    opts = write_catalogue(tmp_path, [f"{server}/good", f"{server}/badlength"], bundled=0)
    out = CliRunner().invoke(lists, ["update", "--force", *opts])
    assert out.exit_code == 1, out.output
    good, bad = sorted(_lines_for(out.output))
    assert "updated" in good and "50 entries" in good and "[in force: downloaded]" in good
    assert "malformed Content-Length header '12abc'" in bad and "[in force: none]" in bad
    assert "index: " in out.output and "failed=1, updated=1" in out.output
    again = CliRunner().invoke(lists, ["update", "--force", *opts])
    assert "[in force: downloaded]" in sorted(_lines_for(again.output))[0]


def test_the_deadline_fails_sources_not_started_in_time(tmp_path: Path, server: str) -> None:
    opts = write_catalogue(tmp_path, [f"{server}/slow"] * 3, bundled=3)
    t0 = time.monotonic()
    out = CliRunner().invoke(
        lists, ["update", "--force", "--deadline", "1", "--parallel", "1", *opts]
    )
    assert out.exit_code == 2, out.output
    assert time.monotonic() - t0 < 8  # one source's tries at most past the deadline
    first, *rest = sorted(_lines_for(out.output))
    assert "ReadTimeoutError" in first and "[in force: bundled]" in first
    assert len(rest) == 2
    assert all("not started before the run's deadline" in line for line in rest)
