"""The notify protocol against real AF_UNIX datagram sockets (path and abstract)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from resolver.sdnotify import Notifier, socket_address, watchdog_interval


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd, and its NOTIFY_SOCKET spelling."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    if request.param == "path":
        path = str(tmp_path / "notify.sock")
        sock.bind(path)
        value = path
    else:
        name = f"lachan-test-{uuid.uuid4().hex}"
        sock.bind(b"\0" + name.encode())
        value = "@" + name
    try:
        yield sock, value
    finally:
        sock.close()


def _recv(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().splitlines()


def test_lifecycle_messages_reach_the_socket(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, value = listener
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    notifier = Notifier.from_env()
    assert notifier.enabled
    assert notifier.ready("serving 2 workers")
    assert _recv(sock) == ["READY=1", "STATUS=serving 2 workers"]
    assert notifier.watchdog()
    assert _recv(sock) == ["WATCHDOG=1"]
    assert notifier.stopping()
    assert _recv(sock) == ["STOPPING=1"]
    assert notifier.status("line one\nline two")
    assert _recv(sock) == ["STATUS=line one line two"]
    assert notifier.extend_timeout(2.5)
    assert _recv(sock) == ["EXTEND_TIMEOUT_USEC=2500000"]
    notifier.close()


def test_reloading_carries_the_real_monotonic_clock(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, value = listener
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    notifier = Notifier.from_env()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading("reloading config")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = _recv(sock)
    assert lines[0] == "RELOADING=1"
    key, stamp = lines[1].split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(stamp) <= after
    assert lines[2] == "STATUS=reloading config"
    notifier.close()


def test_injected_clock_is_used(listener: tuple[socket.socket, str]) -> None:
    sock, value = listener
    notifier = Notifier(socket_address(value), monotonic_usec=lambda: 123456789)
    notifier.reloading()
    assert _recv(sock) == ["RELOADING=1", "MONOTONIC_USEC=123456789"]
    notifier.close()


def test_no_notify_socket_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_env()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_unset_hides_the_socket_from_children(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, value = listener
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    notifier = Notifier.from_env(unset=True)
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ.get('NOTIFY_SOCKET'))"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert child.stdout.strip() == "None"
    assert notifier.ready()
    assert _recv(sock) == ["READY=1"]
    notifier.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@/org/freedesktop/systemd1/notify/123", b"\0/org/freedesktop/systemd1/notify/123"),
        ("relative/notify", None),
        ("vsock:2:1234", None),
    ],
)
def test_socket_address(value: str | None, expected: str | bytes | None) -> None:
    assert socket_address(value) == expected


@pytest.mark.parametrize(
    ("env", "pid", "expected"),
    [
        ({}, 10, None),
        ({"WATCHDOG_USEC": "30000000"}, 10, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "10"}, 10, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "11"}, 10, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, 10, None),
        ({"WATCHDOG_USEC": "0"}, 10, None),
        ({"WATCHDOG_USEC": "-5"}, 10, None),
        ({"WATCHDOG_USEC": "soon"}, 10, None),
        ({"WATCHDOG_USEC": "1000"}, 10, 0.0005),
    ],
)
def test_watchdog_interval(env: dict[str, str], pid: int, expected: float | None) -> None:
    assert watchdog_interval(env, pid) == expected


def test_watchdog_interval_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 2.0
