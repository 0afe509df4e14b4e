"""Slowloris against the console and block page: a real ConsoleRunner on loopback sockets.

Connections beyond the per-address cap are closed at once (the attacker's neighbours are
served; a person at the attacking address is refused until the attack's connections meet the
header deadline); a connection that does not finish its headers within 10 s of opening, or of
the end of its previous answer, is closed; every close is counted, with no address kept.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from resolver import config
from resolver.console.connections import HEADER_DEADLINE, Caps
from resolver.console.runner import ConsoleRunner
from resolver.console.status import Sources
from resolver.state import build_state
from resolver.stats import Stats

BROWSER = {"Host": "blocked.example", "User-Agent": "Mozilla/5.0 (Linux; Android 14) Mobile",
           "Accept": "text/html,application/xhtml+xml", "Accept-Language": "vi-VN,vi;q=0.9",
           "Connection": "keep-alive"}  # fmt: skip


class Served:
    """A console and block page on ephemeral loopback ports, run by a thread's uvloop."""

    def __init__(self, tmp: Path) -> None:
        cfg = config.parse(
            f'lists: {{enabled: false, state_dir: "{tmp}"}}\nconsole: {{listen: "127.0.0.1:0",'
            ' blockpage_listen: "127.0.0.1:0", tls_refuse_port: 0}\n',
            "t",
        )
        assert cfg.console is not None
        state = build_state(cfg)
        self.loop = uvloop.new_event_loop()  # the server's loop (compose.py)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stats = Stats()  # the hosting process's counters, as /metrics reads them
        self.runner = ConsoleRunner(cfg.console, Sources(lambda: cfg, lambda: state, dict), tmp,
                                    counters=self.stats.console_refused)  # fmt: skip
        self._call(self.runner.start())

    def _call(self, coro) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def refused(self) -> dict[tuple[str, ...], int]:
        """lachan_console_refused_total's rows: (listener, reason) -> closed connections."""
        rows = self.stats.snapshot()["console_refused"]
        return {tuple(labels): n for labels, n in rows if n}

    def port(self, which: str) -> int:
        return self.runner.ports[which]

    def stop(self) -> None:
        self._call(self.runner.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    running = Served(tmp_path)
    yield running
    running.stop()


def browser_get(port: int, source: str, path: str) -> int:
    """The status a browser-like GET gets from ``source``; 0 when the connection is closed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=BROWSER)
        return conn.getresponse().status
    except (ConnectionError, http.client.RemoteDisconnected):
        return 0
    finally:
        conn.close()


def closed(sock: socket.socket, wait: float) -> bool:
    """Whether the server has closed ``sock`` (EOF or reset) within ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


PATHS = {"console": "/login", "block page": "/"}


@pytest.mark.parametrize("which, cap", [("console", 16), ("block page", 32)])
def test_forty_connections_from_one_address_leave_at_most_the_cap_open(
    served: Served, which: str, cap: int
) -> None:
    port, guard = served.port(which), served.runner.guards[which]
    attack = [connect(port) for _ in range(40)]  # idle: no byte sent
    try:
        time.sleep(0.3)  # the extra ones are closed at once; the others stay open
        shut = [closed(s, 0.02 if n < cap else 2) for n, s in enumerate(attack)]
        assert shut == [False] * cap + [True] * (40 - cap)
        assert guard.open == {"127.0.0.1": cap} and guard.closed["per_address"] == 40 - cap
        listener = which.replace(" ", "")
        assert served.refused() == {(listener, "per_address"): 40 - cap}  # no address in it
        # The legitimate user: at the attacker's address refused at once, elsewhere served.
        assert browser_get(port, "127.0.0.1", PATHS[which]) == 0
        assert browser_get(port, "127.0.0.2", PATHS[which]) == 200
    finally:
        for sock in attack:
            sock.close()
    deadline = time.monotonic() + 5
    while guard.open.get("127.0.0.1") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert browser_get(port, "127.0.0.1", PATHS[which]) == 200  # served again once they go


def test_the_cap_in_all_closes_connections_from_any_address(served: Served) -> None:
    port, guard = served.port("block page"), served.runner.guards["block page"]
    guard.caps = Caps(per_address=32, total=20)
    held = [connect(port, f"127.0.0.{2 + n % 4}") for n in range(20)]
    try:
        late = connect(port, "127.0.0.9")
        assert closed(late, 2) and served.refused() == {("blockpage", "total"): 1}
        assert not any(closed(s, 0.05) for s in held)
        late.close()
    finally:
        for sock in held:
            sock.close()


def test_a_byte_a_second_sender_is_closed_after_the_deadline(served: Served) -> None:
    assert HEADER_DEADLINE == 10
    port, guard = served.port("block page"), served.runner.guards["block page"]
    fresh = connect(port)  # headers: from its opening
    kept = connect(port)  # headers: from the end of its previous answer
    kept.sendall(b"GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n")
    assert kept.recv(65536).startswith(b"HTTP/1.1 200")
    body = connect(port)  # a form: from the end of its headers, then answered 408
    body.sendall(b"POST /review HTTP/1.1\r\nHost: blocked.example\r\nContent-Length: 90\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\nname=")  # fmt: skip
    begun = time.monotonic()
    ends: dict[str, float] = {}
    answers = {"fresh": b"", "kept": b"", "body": b""}
    served_meanwhile = []
    drip = b"GET / HTTP/1.1\r\nHost: blocked.example\r\nX-Slow: " + b"a" * 20  # valid so far
    for byte in drip:
        if len(ends) == 3 or time.monotonic() - begun > 14:
            break
        for name, sock in (("fresh", fresh), ("kept", kept), ("body", body)):
            if name in ends:
                continue
            try:
                sock.sendall(bytes([byte]))  # one more byte of a request never finished
                sock.settimeout(0.01)
                while chunk := sock.recv(65536):
                    answers[name] += chunk
                ends[name] = time.monotonic() - begun  # EOF: closed
            except TimeoutError:
                pass
            except OSError:
                ends[name] = time.monotonic() - begun
        served_meanwhile.append(browser_get(port, "127.0.0.1", "/"))
        time.sleep(1)
    for sock in (fresh, kept, body):
        sock.close()
    assert 9 <= ends["fresh"] <= 12 and 9 <= ends["kept"] <= 12, ends
    assert 9 <= ends["body"] <= 14 and answers["body"].startswith(b"HTTP/1.1 408"), ends
    assert answers["fresh"] == answers["kept"] == b""
    assert guard.closed["slow"] == 3 and served.refused() == {("blockpage", "slow"): 3}
    assert served_meanwhile and set(served_meanwhile) == {200}, served_meanwhile
