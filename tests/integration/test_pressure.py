"""Resource pressure against ``lachan serve`` on loopback: idle TCP connections by the
thousand, slowloris trickles and a unique-name miss flood leave UDP, TCP and cache hits served
and the server's memory bounded."""

from __future__ import annotations

import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from benchmarks.pressure import (
    flood_file,
    measure_hits,
    nsd_command,
    open_idle,
    p99,
    query,
    raise_nofile,
    rss_mib,
    run_flood,
    states,
)
from tests.conftest import LachanFactory
from tests.stub_upstream import LachanProcess, StubUpstream, free_port, raw_udp
from tests.tools import require

IDLE_CONNECTIONS = 10_000  # the figure; opening them takes ~1-2 s on loopback
MAX_CONNECTIONS = 2_000
IDLE_RSS_GROWTH_MIB = 64  # 2,000 held connections cost a few MiB; this catches a leak per socket
FLOOD_QUERIES = 50_000
FLOOD_SECONDS = 10
FLOOD_RSS_GROWTH_MIB = 96  # cache size 5,000 + 5,000 in flight; a leak per name is ~10x this
HIT_P99_LIMIT_MS = 100.0  # measured ~5-20 ms on a busy 2-core machine (see the report)


# -- helpers ---------------------------------------------------------------------------------
def nofile_limit(pid: int) -> int:
    """The soft open-files limit of a running process (/proc/PID/limits)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open-files limit for pid {pid}")


@pytest.fixture
def nofile() -> Iterator[None]:
    """Enough descriptors for both ends of the idle-connection test, restored afterwards."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    if raise_nofile(IDLE_CONNECTIONS + MAX_CONNECTIONS + 1_000) < IDLE_CONNECTIONS + 500:
        pytest.skip(
            f"platform: RLIMIT_NOFILE hard limit {before[1]} too low for {IDLE_CONNECTIONS} sockets"
        )
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def udp_answer(port: int, name: str, timeout: float = 2.0) -> dns.message.Message | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query(name), ("127.0.0.1", port))
        try:
            return dns.message.from_wire(sock.recv(65535))
        except TimeoutError:
            return None


def tcp_answer(port: int, name: str, timeout: float = 2.0) -> dns.message.Message | None:
    """One query on a fresh connection; None if refused, reset or unanswered in time."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            data = query(name)
            sock.sendall(len(data).to_bytes(2, "big") + data)
            head = _read(sock, 2)
            return dns.message.from_wire(_read(sock, int.from_bytes(head, "big")))
    except (OSError, EOFError):
        return None


def _read(sock: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            raise EOFError("closed")
        out += chunk
    return out


def answered(message: dns.message.Message | None) -> bool:
    return message is not None and message.rcode() == dns.rcode.NOERROR and bool(message.answer)


# -- idle connections ------------------------------------------------------------------------
@pytest.mark.usefixtures("nofile")
def test_idle_tcp_connections_beyond_the_limit(lachan: LachanFactory) -> None:
    idle_timeout = 6.0
    config = f"tcp: {{max_connections: {MAX_CONNECTIONS}, idle_timeout: {idle_timeout}}}\n"
    server = lachan(config=config, ipv6=False)
    pid = server.process.pid  # type: ignore[union-attr]
    assert nofile_limit(pid) >= MAX_CONNECTIONS + 500, "the server inherits the raised limit"
    assert answered(tcp_answer(server.port, "warm.example.test"))
    baseline = rss_mib(pid)
    started = time.monotonic()
    socks = open_idle(server.port, IDLE_CONNECTIONS, seconds=5.0)
    try:
        time.sleep(0.5)  # the server accepts (and aborts) the excess in batches
        held = states(socks)
        opened_in = time.monotonic() - started
        peak = rss_mib(pid)
        assert answered(udp_answer(server.port, "during-idle.example.test"))
        assert not answered(tcp_answer(server.port, "refused.example.test", timeout=1.0))
        assert held["connecting"] == 0, held
        assert 0.9 * MAX_CONNECTIONS <= held["open"] <= MAX_CONNECTIONS, held
        assert held["closed"] >= IDLE_CONNECTIONS - MAX_CONNECTIONS, held
        assert peak - baseline < IDLE_RSS_GROWTH_MIB, (baseline, peak)
        _wait_idle_closed(socks, started + opened_in + idle_timeout + 3.0)
        assert answered(tcp_answer(server.port, "after-idle.example.test"))
        print(
            f"\n{IDLE_CONNECTIONS} idle: {held} in {opened_in:.1f}s, RSS {baseline:.1f}->{peak:.1f} MiB"
        )
    finally:
        for sock in socks:
            sock.close()


def _wait_idle_closed(socks: list[socket.socket], deadline: float) -> None:
    """Every held connection is closed by the server once its idle timeout has passed."""
    while time.monotonic() < deadline and states(socks)["open"]:
        time.sleep(0.25)
    assert states(socks)["open"] == 0, "idle connections outlived idle_timeout"


# -- slowloris -------------------------------------------------------------------------------
def _trickle(socks: list[socket.socket]) -> list[socket.socket]:
    """Send one more byte of a never-completed 512-byte frame; drop connections the server shut."""
    alive = []
    for sock in socks:
        try:
            sock.send(b"\x00")
            alive.append(sock)
        except OSError:
            sock.close()
    return alive


def _slowloris(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock.setblocking(False)
        sock.send(b"\x02\x00")  # a 512-byte frame, of which only the length ever arrives
        socks.append(sock)
    return socks


def test_slowloris_does_not_starve_a_normal_client(lachan: LachanFactory) -> None:
    server = lachan(config="tcp: {max_connections: 1000, idle_timeout: 3}\n", ipv6=False)
    loris = _slowloris(server.port, 400)
    latencies = []
    try:
        for second in range(6):  # one byte per connection per second, for six seconds
            loris = _trickle(loris)
            begun = time.monotonic()
            assert answered(tcp_answer(server.port, f"normal{second}.example.test")), second
            latencies.append(time.monotonic() - begun)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - begun)))
        # Trickled bytes are not activity: after idle_timeout the server has shut them all.
        assert not _trickle(loris), "trickling connections outlived idle_timeout"
    finally:
        for sock in loris:
            sock.close()
    assert max(latencies) < 0.5, latencies


def test_slowloris_filling_every_slot_is_evicted(lachan: LachanFactory) -> None:
    server = lachan(config="tcp: {max_connections: 50, idle_timeout: 2}\n", ipv6=False)
    loris = _slowloris(server.port, 50)
    try:
        time.sleep(0.3)
        assert not answered(tcp_answer(server.port, "full.example.test", timeout=0.5))
        deadline = time.monotonic() + 6.0
        ok = False
        while not ok and time.monotonic() < deadline:
            loris = _trickle(loris)
            ok = answered(tcp_answer(server.port, "evicted.example.test", timeout=0.5))
            time.sleep(0.3)
        assert ok, "no slot came free while slowloris connections trickled"
        assert answered(udp_answer(server.port, "udp-still.example.test"))
    finally:
        for sock in loris:
            sock.close()


# -- unique-name miss flood ------------------------------------------------------------------
@pytest.fixture
def nsd_upstream(tmp_path: Path) -> Iterator[int]:
    """NSD answering every name (a wildcard root zone): an upstream that never runs dry."""
    require("nsd")
    port = free_port(("127.0.0.1",))
    process = subprocess.Popen(
        nsd_command(tmp_path / "nsd", port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while raw_udp(port, query("up.example.test"), timeout=0.2) is None:
            assert process.poll() is None and time.monotonic() < deadline, "nsd did not start"
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_unique_miss_flood_keeps_memory_bounded_and_hits_fast(
    nsd_upstream: int, tmp_path: Path
) -> None:
    config = "cache: {size: 5000}\nserver: {max_inflight: 5000}\n"
    with LachanProcess(tmp_path, [f"127.0.0.1:{nsd_upstream}"], config, ipv6=False) as server:
        pid = server.process.pid  # type: ignore[union-attr]
        assert answered(udp_answer(server.port, "warm.example.test"))
        baseline = rss_mib(pid)
        flood = run_flood(
            server.port, flood_file(tmp_path / "names", FLOOD_QUERIES), FLOOD_QUERIES, FLOOD_SECONDS
        )
        try:
            hits = measure_hits(server.port, "warm.example.test", flood, FLOOD_SECONDS + 10)
            peak = rss_mib(pid)
        finally:
            output = flood.communicate(timeout=30)[0]
        assert flood.returncode == 0, output
        assert server.alive(), server.stderr()
        assert answered(udp_answer(server.port, "after-flood.example.test", timeout=3.0))
        server.assert_clean_log()
    print(f"\nflood: RSS {baseline:.1f}->{peak:.1f} MiB, hit p99 {p99(hits):.1f} ms, n={len(hits)}")
    print(output)
    assert len(hits) > 100
    assert peak - baseline < FLOOD_RSS_GROWTH_MIB, (baseline, peak)
    assert p99(hits) < HIT_P99_LIMIT_MS, sorted(hits)[-10:]


def test_long_upstream_outage_under_a_miss_flood(stub: StubUpstream, lachan: LachanFactory) -> None:
    server = lachan(config="upstream: {timeout: 0.05}\n", ipv6=False, expect_errors=True)
    stub.mode = "drop"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(1_500):  # each unique miss times out once: 1,500 consecutive failures
            sock.sendto(query(f"outage{i}.example.test"), ("127.0.0.1", server.port))
            if i % 100 == 99:
                time.sleep(0.1)
    time.sleep(1.0)
    stub.mode = "normal"
    assert answered(udp_answer(server.port, "recovered.example.test", timeout=3.0))
    server.assert_clean_log()
