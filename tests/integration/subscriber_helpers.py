"""Two ``lachan serve`` sharing a real redis-server, RADIUS by radclient, for the ISP tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import dns.message

from resolver.coverage.canary import parse_canary
from tests.integration.e2e_helpers import ask, start_lachan
from tests.stub_upstream import LachanProcess, free_port, lachan_command
from tests.subscribers.radius_packets import accounting
from tests.subscribers.redis_server import RedisServer

SECRET = "isp-shared-secret-42"
CASINO = "royal-casino-club.com"  # under16 blocks it (keyword casino); isp-default does not


@dataclass
class IspPair:
    """Host A runs RADIUS accounting; host B only follows the store."""

    redis: RedisServer
    a: LachanProcess
    b: LachanProcess
    radius_port: int
    metrics_a: int
    config_a: Path
    ledger_a: Path

    def radclient(self, lines: str, secret: str = SECRET) -> subprocess.CompletedProcess[str]:
        """FreeRADIUS's radclient sends ``lines`` (attribute=value, comma separated) to A."""
        return subprocess.run(
            ["/usr/bin/radclient", "-r", "1", "-t", "1", "-x",
             f"127.0.0.1:{self.radius_port}", "acct", secret],
            input=lines, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    def subscribers(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*lachan_command(), "subscribers", args[0], "--config", str(self.config_a), *args[1:]],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_a}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()
        self.redis.kill()


def start_pair(work: Path, upstream: str, workers: int = 1) -> IspPair:
    redis = RedisServer(_folder(work / "redis")).start()
    try:
        return _start_hosts(work, upstream, workers, redis)
    except BaseException:
        redis.kill()  # a host that failed to start must not leave the store running
        raise


def _start_hosts(work: Path, upstream: str, workers: int, redis: RedisServer) -> IspPair:
    secret = work / "radius.secret"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    os.chmod(secret, 0o600)
    radius_port, metrics_a, metrics_b = free_port(("127.0.0.1",)), free_port(("127.0.0.1",)), 0
    common = (
        f"site: {{id: isp-test, kind: isp}}\nlists: {{enabled: false}}\nworkers: {workers}\n"
        f"subscribers:\n  store: '{redis.url}'\n  default: isp-default\n"
    )
    radius = (
        f"  radius: {{listen: '127.0.0.1:{radius_port}', secret_file: '{secret}',\n"
        "           nas: ['127.0.0.1/32'], id_attribute: User-Name}\n"
    )
    keys, ledger = work / "keys", work / "ledger" / "a.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [*lachan_command(), "audit", "keygen", "--out", str(keys)], capture_output=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    config_a = (
        common + radius + f"metrics: {{listen: '127.0.0.1:{metrics_a}'}}\n"
        f"audit: {{ledger: '{ledger}', key: '{keys / 'audit.key'}', period: 60}}\n"
    )
    metrics_b = free_port(("127.0.0.1",))
    a = start_lachan(_folder(work / "a"), upstream, config_a, ipv6=True)
    try:
        b = start_lachan(
            _folder(work / "b"), upstream, common + f"metrics: {{listen: '127.0.0.1:{metrics_b}'}}\n",
            ipv6=True,
        )  # fmt: skip
    except BaseException:
        a.stop()
        raise
    config_path = work / "a" / f"lachan-{a.port}.yaml"
    return IspPair(redis, a, b, radius_port, metrics_a, config_path, ledger)


def profile_seen(process: LachanProcess, source: str) -> str:
    """The profile the canary TXT reports for queries from ``source``."""
    reply = ask(process.port, "status.lachan.arpa", "TXT", source=source)
    texts = [s for rrset in reply.answer for r in rrset for s in r.strings]
    return parse_canary(texts).profile


def canary_text(process: LachanProcess, source: str) -> str:
    reply = ask(process.port, "status.lachan.arpa", "TXT", source=source)
    return " ".join(s.decode() for rrset in reply.answer for r in rrset for s in r.strings)


def blocked(reply: dns.message.Message) -> bool:
    return reply.rcode() != 0 or not reply.answer


def until_profile(process: LachanProcess, source: str, wanted: str, limit: float) -> float:
    """Seconds until ``source`` is answered under ``wanted``; AssertionError after ``limit``."""
    started = time.monotonic()
    while profile_seen(process, source) != wanted:
        assert time.monotonic() - started < limit, f"{source} not {wanted} after {limit} s"
        time.sleep(0.02)
    return time.monotonic() - started


def send_from(source: str, port: int, data: bytes) -> bytes | None:
    """One datagram from ``source`` (a loopback address) to the RADIUS port; the reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(0.5)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


def unlisted_nas_start(port: int, address: str) -> bytes | None:
    """A correctly signed Start, but from 127.0.0.9, which is not a listed NAS."""
    raw = accounting("Start", secret=SECRET.encode(), User_Name="line-1", Framed_IP_Address=address)
    return send_from("127.0.0.9", port, raw)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
