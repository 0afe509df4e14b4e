"""Helpers for the end-to-end tests: an "internet" stub, lachan launchers, dnspython and dig clients.

Everything runs on loopback. ``InternetStub`` extends the shared stub upstream so that names
outside ``example.test`` resolve like they do on the open internet (the safe-search hosts with
their real addresses, every other name with one documentation address), because a filter can
only be told apart from an ordinary resolver when unfiltered names resolve.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.stub_upstream import (  # noqa: E402
    ZONE,
    LachanProcess,
    StubUpstream,
    free_port,
    lachan_command,
)

__all__ = ["LachanProcess", "StubUpstream", "free_port", "lachan_command"]

# The safe-search hosts and the addresses they have on the internet (as published by each
# engine for network-level enforcement); the stub serves them so rewrites resolve offline.
SAFE_TARGETS: dict[str, tuple[str, str | None]] = {
    "forcesafesearch.google.com": ("216.239.38.120", "2001:4860:4802:32::78"),
    "restrict.youtube.com": ("216.239.38.120", "2001:4860:4802:32::78"),
    "restrictmoderate.youtube.com": ("216.239.38.119", "2001:4860:4802:32::77"),
    "strict.bing.com": ("204.79.197.220", None),
    "safe.duckduckgo.com": ("52.142.124.215", None),
}
# Any other name outside example.test: one documentation address (RFC 5737 / RFC 3849).
INTERNET_V4 = "198.51.100.7"
INTERNET_V6 = "2001:db8:100::7"
INTERNET_TTL = 300


def internet_answer(query: dns.message.Message) -> dns.message.Message:
    """An authoritative-looking answer for a name outside the stub's zone."""
    response = dns.message.make_response(query)
    q = query.question[0]
    name = q.name.to_text().lower().rstrip(".")
    v4, v6 = SAFE_TARGETS.get(name, (INTERNET_V4, INTERNET_V6))
    address = v4 if q.rdtype == dns.rdatatype.A else v6 if q.rdtype == dns.rdatatype.AAAA else None
    if address is not None:
        response.answer.append(
            dns.rrset.from_text(
                q.name, INTERNET_TTL, "IN", dns.rdatatype.to_text(q.rdtype), address
            )
        )
    else:  # NODATA with an SOA (RFC 2308), like a real zone without that type
        soa = "ns.internet.test. hostmaster.internet.test. 1 3600 600 86400 60"
        response.authority.append(dns.rrset.from_text(q.name, 60, "IN", "SOA", soa))
    return response


class InternetStub(StubUpstream):
    """The shared stub, plus every name outside example.test resolving (see module doc)."""

    def reply_to(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        reply, delay = super().reply_to(data, transport)  # counts the query, applies modes
        if reply is None or self.mode != "normal":
            return reply, delay
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return reply, delay
        if not query.question or query.question[0].rdclass != dns.rdataclass.IN:
            return reply, delay
        if query.question[0].name.is_subdomain(ZONE):
            return reply, delay
        return internet_answer(query).to_wire(max_size=65535), 0.0


# -- the compiled blocklist index, once per test session ------------------------------------
def compiled_state_dir(base: Path) -> Path:
    """A lists state dir under ``base`` holding the bundled catalogue's index (compiled once)."""
    state = base / "e2e-lists-state"
    index = state / "index"
    if index.is_dir() and any(index.glob("*.lidx")):
        return state
    env = dict(os.environ, LACHAN_STATE_DIR=str(state))
    done = subprocess.run(
        [*lachan_command(), "lists", "compile"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return state


def copy_policies(target: Path, extra: dict[str, str] | None = None) -> Path:
    """The shipped profiles copied into ``target``, plus ``extra`` profiles (name -> YAML)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(path, target / path.name)
    for name, text in (extra or {}).items():
        (target / f"{name}.yaml").write_text(text, encoding="utf-8")
    return target


def start_lachan(
    workdir: Path,
    upstream: str,
    config: str,
    extra_listens: tuple[str, ...] = (),
    ipv6: bool = True,
    timeout: float = 30.0,
) -> LachanProcess:
    """``lachan serve --config`` on 127.0.0.1 (and ::1) at a free port, plus ``extra_listens``."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = LachanProcess(workdir, [upstream], config, ipv6)
    for listen in extra_listens:
        process.args[process.args.index("--upstream") : process.args.index("--upstream")] = [
            "--listen",
            listen,
        ]
    return process.start(timeout=timeout)


def stop_checked(process: LachanProcess) -> int | None:
    """Stop a server that must still be alive and must have logged no error."""
    assert process.alive(), f"lachan died:\n{process.stderr()}"
    code = process.stop()
    process.assert_clean_log()
    return code


# -- clients --------------------------------------------------------------------------------
def make_query(
    name: str,
    rdtype: str | int = "A",
    edns: bool = True,
    options: list[dns.edns.Option] | None = None,
) -> dns.message.Message:
    if edns:
        return dns.message.make_query(name, rdtype, use_edns=0, payload=1232, options=options or [])
    return dns.message.make_query(name, rdtype, use_edns=False)


def ask(
    port: int,
    name: str,
    rdtype: str | int = "A",
    *,
    source: str = "127.0.0.1",
    host: str | None = None,
    edns: bool = True,
    tcp: bool = False,
    options: list[dns.edns.Option] | None = None,
    timeout: float = 3.0,
) -> dns.message.Message:
    """One query with dnspython (the oracle) from ``source``; raises on timeout."""
    where = host or ("::1" if ":" in source else "127.0.0.1")
    query = make_query(name, rdtype, edns, options)
    if tcp:
        return dns.query.tcp(query, where, port=port, source=source, timeout=timeout)
    return dns.query.udp(query, where, port=port, source=source, timeout=timeout)


def try_ask(
    port: int, name: str, rdtype: str | int = "A", **kwargs: Any
) -> dns.message.Message | None:
    """``ask``, or None when nothing came back in time."""
    try:
        return ask(port, name, rdtype, **kwargs)
    except dns.exception.Timeout:
        return None


def rcode(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


def ede(message: dns.message.Message) -> list[tuple[int, str]]:
    """(INFO-CODE, EXTRA-TEXT) of every Extended DNS Error option in the reply."""
    return [(int(e.code), e.text or "") for e in message.extended_errors()]


def addresses(message: dns.message.Message, rdtype: str = "A") -> list[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(r.to_text() for rrset in message.answer if rrset.rdtype == wanted for r in rrset)


def cnames(message: dns.message.Message) -> list[tuple[str, str]]:
    """(owner, target) of every CNAME in the answer, without trailing dots."""
    return [
        (rrset.name.to_text().rstrip("."), r.target.to_text().rstrip("."))
        for rrset in message.answer
        if rrset.rdtype == dns.rdatatype.CNAME
        for r in rrset
    ]


def dig(port: int, *args: str, source: str = "127.0.0.1", host: str = "127.0.0.1") -> str:
    """Run ``dig`` the way a user would, bounded in time; returns its output."""
    done = subprocess.run(
        ["dig", f"@{host}", "-p", str(port), "-b", source, "+tries=1", "+time=3", *args],
        capture_output=True,
        text=True,
        timeout=15,
    )
    return done.stdout + done.stderr


def dig_status(output: str) -> str:
    match = re.search(r"status: ([A-Z]+)", output)
    assert match, output
    return match.group(1)


# -- lachan in-process (for an injected wall clock) -----------------------------------------
class FakeWallclock:
    """A settable POSIX clock for policy decisions (schedules)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class InProcessServer:
    """``resolver.compose.serve`` in a thread with its own event loop; ``server`` once ready."""

    def __init__(self, config: Any, wallclock: Callable[[], float]) -> None:
        self.config = config
        self.wallclock = wallclock
        self.server: Any = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from resolver.compose import serve

        def ready(server: Any) -> None:
            self.server = server
            self._loop = asyncio.get_running_loop()
            self._ready.set()

        try:
            asyncio.run(
                serve(self.config, lambda: self.config, ready=ready, wallclock=self.wallclock)
            )
        except BaseException as exc:  # reported to the test thread by start()
            self.error = exc
            self._ready.set()

    def start(self, timeout: float = 30.0) -> InProcessServer:
        self._thread.start()
        assert self._ready.wait(timeout), "in-process lachan did not become ready"
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self.server is not None:
            self._loop.call_soon_threadsafe(self.server.stopping.set)
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "in-process lachan did not stop"

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def port_of(process: LachanProcess) -> int:
    return process.port


def udp_socket(source: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    return sock


def udp_exchange(port: int, data: bytes, source: str, timeout: float = 1.0) -> bytes | None:
    """Send raw bytes from ``source`` to 127.0.0.1:port; the first reply, or None."""
    with udp_socket(source) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def iter_unique(prefix: str) -> Iterator[str]:
    """prefix-0, prefix-1, ... (names never asked before: no memo, no cache)."""
    n = 0
    while True:
        yield f"{prefix}{n}"
        n += 1
