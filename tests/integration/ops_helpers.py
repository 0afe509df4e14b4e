"""Helpers for the production-operations tests: lachan with flags, dnsdist, dnsperf, metrics.

Everything runs on loopback. Every wait is bounded by a deadline, every process started here
is stopped by its owner (context managers or fixtures).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from tests.stub_upstream import PING, ROOT, LachanProcess, free_port

POLICIES = ROOT / "policies"
DNSDIST = shutil.which("dnsdist")
DNSPERF = shutil.which("dnsperf")
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


# -- lachan -------------------------------------------------------------------------------
def start_lachan(
    workdir: Path,
    upstream: str,
    config: str,
    workers: int | None = None,
    timeout: float = 30.0,
) -> LachanProcess:
    """``lachan serve`` on 127.0.0.1 (IPv4 only) with ``config``; ``--workers N`` if given."""
    process = ProbedLachan(workdir, [upstream], config, ipv6=False)
    if workers is not None:
        process.args += ["--workers", str(workers)]
    return process.start(timeout=timeout)


class ProbedLachan(LachanProcess):
    """LachanProcess whose readiness probe comes from 127.0.0.2, not 127.0.0.1.

    With ``trusted_proxy: [127.0.0.1/32]`` lachan expects a PROXY v2 header on every
    datagram from 127.0.0.1 and drops a bare query, so the stock probe would never see an
    answer.
    """

    def start(self, timeout: float = 15.0) -> LachanProcess:
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lachan exited {self.process.returncode}:\n{self.stderr()}")
            if raw_exchange(self.port, PING, "127.0.0.2", tcp=False, timeout=0.1) is not None:
                return self
        self.stop()
        raise RuntimeError(f"lachan did not answer within {timeout}s:\n{self.stderr()}")


def config_path(process: LachanProcess) -> Path:
    """The config file LachanProcess wrote (rewrite it, then SIGHUP, to reload)."""
    return process.workdir / f"lachan-{process.port}.yaml"


def copy_policies(target: Path) -> Path:
    """A private copy of the bundled profiles, so a test may edit them and reload."""
    target.mkdir(parents=True, exist_ok=True)
    for path in POLICIES.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


def signal_process(process: LachanProcess, signum: int = signal.SIGHUP) -> None:
    assert process.process is not None
    process.process.send_signal(signum)


# -- queries ------------------------------------------------------------------------------
def ask(
    port: int,
    name: str,
    rdtype: str = "A",
    tcp: bool = False,
    source: str | None = None,
    host: str = "127.0.0.1",
    timeout: float = 3.0,
) -> dns.message.Message:
    """One query from ``source`` (any 127/8 address works on Linux loopback)."""
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=timeout, source=source)
    return dns.query.udp(query, host, port=port, timeout=timeout, source=source)


def canary_profile(reply: dns.message.Message) -> str | None:
    """The ``profile=`` field of a status.lachan.arpa TXT answer."""
    for rrset in reply.answer:
        for rdata in rrset:
            for text in getattr(rdata, "strings", ()):
                if text.startswith(b"profile="):
                    return str(text[len(b"profile=") :].decode())
    return None


def cname_target(reply: dns.message.Message) -> str | None:
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            return str(rrset[0].target)
    return None


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def answers(port: int, name: str = "status.lachan.arpa", rdtype: str = "TXT") -> bool:
    try:
        ask(port, name, rdtype, timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return False
    return True


# -- PROXY protocol v2 (built by hand: the test must not trust the parser it checks) -------
def proxy_v2_header(source: tuple[str, int], dest: tuple[str, int], stream: bool) -> bytes:
    """A PROXY v2 PROXY-command header for IPv4 (haproxy proxy-protocol.txt, section 2.2)."""
    command = 0x21  # version 2, PROXY
    family = 0x11 if stream else 0x12  # AF_INET with STREAM or DGRAM
    addresses = (
        ipaddress.IPv4Address(source[0]).packed
        + ipaddress.IPv4Address(dest[0]).packed
        + struct.pack("!HH", source[1], dest[1])
    )
    return PROXY_V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", 12) + addresses


def raw_exchange(
    port: int, payload: bytes, source: str, tcp: bool, timeout: float = 1.5
) -> bytes | None:
    """Send ``payload`` as is from ``source``; the first reply (TCP: unframed bytes) or None."""
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(payload)
            data = sock.recv(65535)
        except (TimeoutError, ConnectionError):
            return None
        return data or None


# -- metrics ------------------------------------------------------------------------------
def metric(port: int, name: str) -> float | None:
    """The sum of every sample of ``name`` at http://127.0.0.1:port/metrics (None if absent
    or the endpoint is not up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:  # not listening yet (URLError is an OSError)
        return None
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
    ]
    return sum(values) if values else None


# -- the guides ---------------------------------------------------------------------------
DOCS = ROOT / "docs"


def guide_blocks(guide: str, language: str) -> list[str]:
    """The fenced code blocks of ``docs/<guide>`` tagged ``language`` ("" for untagged).

    Fences may be indented (a block inside a list item); the indent is removed.
    """
    blocks: list[str] = []
    current: list[str] | None = None
    indent, tag = 0, ""
    for line in (DOCS / guide).read_text(encoding="utf-8").splitlines():
        stripped = line.lstrip(" ")
        if current is None and stripped.startswith("```"):
            current, indent, tag = [], len(line) - len(stripped), stripped[3:].strip()
        elif current is not None and stripped.startswith("```"):
            if tag == language:
                blocks.append("".join(f"{text[indent:]}\n" for text in current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def replace_exactly(text: str, old: str, new: str) -> str:
    """``text`` with its one ``old`` replaced: a guide that drifted fails loudly here."""
    assert text.count(old) == 1, f"expected exactly one {old!r} in:\n{text}"
    return text.replace(old, new)


# -- dnsdist -------------------------------------------------------------------------------
@contextmanager
def dnsdist(workdir: Path, config: str, port: int, timeout: float = 20.0) -> Iterator[Path]:
    """Run ``dnsdist --supervised`` with ``config`` until it answers on ``port``."""
    assert DNSDIST is not None
    path = workdir / "dnsdist.conf"
    path.write_text(config, encoding="utf-8")
    log = workdir / "dnsdist.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [DNSDIST, "--supervised", "--disable-syslog", "-C", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        ok = wait_until(lambda: process.poll() is not None or answers(port), timeout, 0.2)
        if process.poll() is not None or not ok:
            raise RuntimeError(f"dnsdist did not come up:\n{log.read_text(errors='replace')}")
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# -- dnsperf -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerfResult:
    sent: int
    completed: int
    lost: int
    qps: float
    output: str = field(repr=False)


def write_perf_data(path: Path, names: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{name} {rdtype}\n" for name, rdtype in names), encoding="ascii")
    return path


def start_dnsperf(port: int, data: Path, seconds: float, qps: int) -> subprocess.Popen[str]:
    """dnsperf in the background, rate-limited (-Q) so a 2-core machine stays responsive."""
    assert DNSPERF is not None
    return subprocess.Popen(
        [DNSPERF, "-s", "127.0.0.1", "-p", str(port), "-d", str(data), "-l", str(seconds)]
        + ["-Q", str(qps), "-c", "4", "-q", "200", "-t", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_dnsperf(process: subprocess.Popen[str], timeout: float) -> PerfResult:
    output, _ = process.communicate(timeout=timeout)

    def number(label: str) -> float:
        found = re.search(rf"{label}:\s+([\d.]+)", output)
        assert found, f"dnsperf printed no {label!r}:\n{output}"
        return float(found.group(1))

    return PerfResult(
        sent=int(number("Queries sent")),
        completed=int(number("Queries completed")),
        lost=int(number("Queries lost")),
        qps=number("Queries per second"),
        output=output,
    )


def run_dnsperf(port: int, data: Path, seconds: float, qps: int) -> PerfResult:
    return finish_dnsperf(start_dnsperf(port, data, seconds, qps), seconds + 30)


__all__ = ["free_port"]


def seed_state_dir(target: Path) -> Path:
    """A lists state folder holding the bundled catalogue's compiled index, copied from the
    shared cache (compiled there once), so a test with its own state folder starts in
    seconds instead of compiling a million names again."""
    import shutil

    from resolver.lists.catalogue import load_catalogue
    from resolver.lists.snapshot import ensure_index
    from resolver.settings import default_state_dir

    built = ensure_index(load_catalogue(None), default_state_dir())
    (target / "index").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, target / "index" / built.name)
    return target
