"""TCP abuse, seeded and bounded: clients that pipeline queries (good, huge-answer and fuzzed)
and never read, floods of connections from an address the ACL denies, half frames and
resets, all mixed; afterwards lachan answers, holds no leaked descriptor and stayed within
its memory bounds (issue 11: exhaustion)."""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Iterator

import dns.message
import dns.query
import pytest

from tests.fuzz.packets import packet
from tests.integration.hardening_helpers import ScriptedStub, open_fds, rss_bytes, sample
from tests.stub_upstream import LachanProcess, free_port

ALLOWED, DENIED = "127.0.0.2", "127.0.0.1"
ACTIONS = 400  # at most 400 connections in all
MAX_OPEN = 150  # the oldest is closed beyond this many held by the test
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedStub]:
    with ScriptedStub(seed=12) as stub:
        yield stub


@pytest.fixture(scope="module")
def target(upstream: ScriptedStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    metrics_port = free_port(("127.0.0.1",))
    config = f"""site: {{id: fuzz-tcp, kind: isp}}
lists: {{enabled: false}}
metrics: {{listen: "127.0.0.1:{metrics_port}"}}
acl: {{allow: [{ALLOWED}/32], action: drop}}
tcp: {{max_connections: 100, output_buffer_kib: 64, output_budget_mib: 4, idle_timeout: 2}}
ratelimit: {{tcp: {{per_client: 40, total: 100}}}}
"""
    work = tmp_path_factory.mktemp("fuzz-tcp")
    server = LachanProcess(work, [upstream.address], config, ipv6=False).start()
    yield server, metrics_port
    assert server.alive(), server.stderr()
    server.stop()
    server.assert_clean_log()


def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(0.2)
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        pass  # refused or reset at once: what a flood may get
    return sock


def frames(rng: random.Random) -> bytes:
    """A pipelined burst: huge-answer queries, normal ones and fuzzed packets."""
    out = []
    for i in range(rng.randint(1, 60)):
        kind = rng.random()
        if kind < 0.4:
            wire = dns.message.make_query("giant.example.test", "TXT", id=i).to_wire()
        elif kind < 0.6:
            wire = dns.message.make_query(f"t{rng.randrange(50)}.example.test", "A").to_wire()
        else:
            wire = packet(rng)[:65535]
        out.append(len(wire).to_bytes(2, "big") + wire)
    data = b"".join(out)
    return data[: rng.randint(1, len(data))] if rng.random() < 0.2 else data  # half a frame


def act(rng: random.Random, port: int, held: list[socket.socket]) -> None:
    roll = rng.random()
    sock = connect(port, DENIED if roll < 0.35 else ALLOWED)
    try:
        if roll >= 0.35 or rng.random() < 0.5:
            sock.sendall(frames(rng))
    except OSError:
        pass
    if rng.random() < 0.2:  # an abrupt reset instead of a close
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        return
    held.append(sock)  # never read
    if len(held) > MAX_OPEN:
        held.pop(0).close()


def answers(port: int) -> bool:
    query = dns.message.make_query("www.example.test", "A")
    try:
        tcp = dns.query.tcp(query, "127.0.0.1", port=port, timeout=3, source=ALLOWED)
        udp = dns.query.udp(query, "127.0.0.1", port=port, timeout=3, source=ALLOWED)
    except (OSError, EOFError, dns.exception.Timeout):
        return False
    return bool(tcp.answer) and bool(udp.answer)


def test_never_reading_clients_and_denied_floods_leave_lachan_answering(target: tuple) -> None:
    server, metrics_port = target
    assert answers(server.port)
    dns.query.tcp(dns.message.make_query("giant.example.test", "TXT"), "127.0.0.1",
                  port=server.port, timeout=5, source=ALLOWED)  # fmt: skip
    pid = server.process.pid
    fds, rss = open_fds(pid), rss_bytes(pid)
    rng, held = random.Random(20261206), []
    started = time.monotonic()
    try:
        for _ in range(ACTIONS):
            act(rng, server.port, held)
            if time.monotonic() - started > 40:
                break
        assert server.alive(), server.stderr()
        # 4 MiB of queued answers at most, the input buffers of 100 connections, and noise.
        assert rss_bytes(pid) - rss < 48 * MiB, (rss_bytes(pid) - rss) / MiB
        assert answers(server.port) or len(held) >= 100  # slots may all be taken by held ones
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while open_fds(pid) > fds + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(pid) <= fds + 2
    assert answers(server.port)
    assert sample(metrics_port, "lachan_tcp_refused_total", reason="acl") > 0
