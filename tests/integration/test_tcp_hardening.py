"""TCP against exhaustion (issue 11, findings 8, 10, 17) on a real ``lachan serve``: clients
that never read their answers, connection floods from denied addresses, per-client caps, and
a cloaked block in drop mode. Memory is read from /proc/PID/status, counters from /metrics."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest
from hardening_helpers import (
    CLOAK_TARGET,
    ScriptedStub,
    closed_at_once,
    frame,
    non_reading_client,
    rss_bytes,
    sample,
    send_some,
)

from tests.stub_upstream import LachanProcess, free_port, lachan_command

MiB = 1024 * 1024


@pytest.fixture
def scripted() -> Iterator[ScriptedStub]:
    with ScriptedStub() as server:
        yield server


def serve(
    tmp_path: Path, stub: ScriptedStub, extra: str, lists: bool = False
) -> tuple[LachanProcess, int]:
    metrics_port = free_port(("127.0.0.1",))
    config = (
        "site: {id: h2-tcp, kind: isp}\n"
        + ("" if lists else "lists: {enabled: false}\n")
        + f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}\n{extra}'
    )
    return LachanProcess(tmp_path, [stub.address], config, ipv6=False).start(), metrics_port


def tcp_answer(port: int, name: str, rdtype: str = "A", source: str = "127.0.0.1") -> str:
    query = dns.message.make_query(name, rdtype)
    reply = dns.query.tcp(query, "127.0.0.1", port=port, timeout=5, source=source)
    return reply.to_text()


def test_clients_that_never_read_a_64k_answer_keep_rss_bounded_and_others_served(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    process, _ = serve(tmp_path, scripted, "tcp: {output_buffer_kib: 128, idle_timeout: 30}\n")
    try:
        assert "TXT" in tcp_answer(process.port, "giant.example.test", "TXT")  # now cached
        assert process.process is not None
        baseline = rss_bytes(process.process.pid)
        batch = b"".join(
            frame(dns.message.make_query("giant.example.test", "TXT", id=i)) for i in range(50)
        )
        hogs = [non_reading_client(process.port) for _ in range(8)]
        grown = 0
        for _ in range(40):  # up to 16,000 queries asking for ~1 GB of answers in all
            for hog in hogs:
                send_some(hog, batch)
            time.sleep(0.01)  # let the server read and answer
            grown = rss_bytes(process.process.pid) - baseline
            if grown > 200 * MiB:
                break  # unbounded: stop before the machine suffers
        # Eight connections may queue 128 KiB plus one answer each; the rest is noise.
        assert grown < 40 * MiB, f"RSS grew {grown / MiB:.0f} MiB"
        assert "example.test" in tcp_answer(process.port, "other.example.test")
        reply = dns.query.udp(dns.message.make_query("www.example.test", "A"), "127.0.0.1",
                              port=process.port, timeout=3)  # fmt: skip
        assert reply.answer
        for hog in hogs:
            hog.close()
    finally:
        process.stop()
    process.assert_clean_log()


def test_the_total_output_budget_closes_the_largest_holders(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    extra = "tcp: {output_buffer_kib: 1024, output_budget_mib: 1, idle_timeout: 30}\n"
    process, metrics_port = serve(tmp_path, scripted, extra)
    try:
        tcp_answer(process.port, "giant.example.test", "TXT")
        batch = b"".join(
            frame(dns.message.make_query("giant.example.test", "TXT", id=i)) for i in range(40)
        )
        hogs = [non_reading_client(process.port) for _ in range(6)]
        for _ in range(10):
            for hog in hogs:
                send_some(hog, batch)
        # The server reads and answers at its own pace: on a busy machine the budget is crossed
        # a little after the last send, so wait for the count (bounded).
        deadline = time.monotonic() + 15
        refused = sample(metrics_port, "lachan_tcp_refused_total", reason="buffer")
        while refused < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            refused = sample(metrics_port, "lachan_tcp_refused_total", reason="buffer")
        assert refused >= 1
        assert "example.test" in tcp_answer(process.port, "after.example.test")
        for hog in hogs:
            hog.close()
    finally:
        process.stop()
    process.assert_clean_log()


def test_a_denied_address_is_closed_at_accept_and_never_holds_a_slot(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    extra = "acl: {allow: [127.0.0.2/32], action: drop}\ntcp: {max_connections: 20}\n"
    process, metrics_port = serve(tmp_path, scripted, extra)
    flood: list[socket.socket] = []
    try:
        for _ in range(60):  # three times the slots, all from a denied address, held open
            sock = socket.create_connection(("127.0.0.1", process.port), timeout=2)
            flood.append(sock)
        assert all(closed_at_once(sock) for sock in flood[:10])
        assert "192.0.2.1" in tcp_answer(process.port, "www.example.test", source="127.0.0.2")
        refused = sample(metrics_port, "lachan_tcp_refused_total", reason="acl")
        assert refused >= 60
    finally:
        for sock in flood:
            sock.close()
        process.stop()
    process.assert_clean_log()


def test_ratelimit_tcp_caps_connections_per_client(tmp_path: Path, scripted: ScriptedStub) -> None:
    extra = "ratelimit: {tcp: {per_client: 3, total: 50}}\n"
    process, metrics_port = serve(tmp_path, scripted, extra)
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            held.append(socket.create_connection(("127.0.0.1", process.port), timeout=2))
        assert not any(closed_at_once(sock, 0.3) for sock in held)
        fourth = socket.create_connection(("127.0.0.1", process.port), timeout=2)
        held.append(fourth)
        assert closed_at_once(fourth)
        # Another address has its own share; a closed connection gives its slot back.
        assert "192.0.2.1" in tcp_answer(process.port, "www.example.test", source="127.0.0.5")
        held.pop(0).close()
        assert "192.0.2.1" in tcp_answer(process.port, "www.example.test")
        refused = sample(metrics_port, "lachan_tcp_refused_total", reason="per_client")
        assert refused == 1
    finally:
        for sock in held:
            sock.close()
        process.stop()
    process.assert_clean_log()


DROPPER = "name: dropper\nblock: [malware]\n"
CATALOGUE = """version: 1
categories:
  - id: malware
    name_vi: Mã độc
    name_en: Malware
    description: an RPZ that asks for silence
    default: true
    sources: [{id: h2-rpz, format: rpz, bundled: h2.rpz, licence: CC0-1.0}]
"""
RPZ = f"""$TTL 300
@ SOA localhost. root.localhost. 1 3600 600 86400 300
@ NS localhost.
{CLOAK_TARGET} CNAME rpz-drop.
"""


def drop_mode_config(tmp_path: Path) -> str:
    """Lists with one RPZ drop rule for CLOAK_TARGET, compiled; a profile blocking it."""
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "h2.rpz").write_text(RPZ, encoding="utf-8")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "dropper.yaml").write_text(DROPPER, encoding="utf-8")
    lists = f'{{catalogue: "{tmp_path}/catalogue.yaml", state_dir: "{tmp_path}/state"}}'
    subprocess.run(
        [*lachan_command(), "lists", "compile", "--catalogue", f"{tmp_path}/catalogue.yaml",
         "--state-dir", f"{tmp_path}/state"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return (
        f'lists: {lists}\npolicies: {{dir: "{tmp_path}/policies"}}\nclients: {{default: dropper}}\n'
    )


def test_a_cloaked_block_in_drop_mode_closes_tcp_without_an_empty_frame(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    process, _ = serve(tmp_path, scripted, drop_mode_config(tmp_path), lists=True)
    try:
        for attempt in ("miss", "cached"):
            sock = socket.create_connection(("127.0.0.1", process.port), timeout=3)
            sock.sendall(frame(dns.message.make_query("cloak.h2.test", "A")))
            sock.settimeout(3)
            got = b""
            try:
                while chunk := sock.recv(100):
                    got += chunk
            except TimeoutError:
                raise AssertionError((attempt, got)) from None
            sock.close()
            assert got == b"", (attempt, got)
        assert scripted.count("cloak.h2.test", "A") == 1
    finally:
        process.stop()
    process.assert_clean_log()


def test_a_client_that_never_reads_is_cut_off_at_the_idle_timeout(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    extra = "tcp: {output_buffer_kib: 16, idle_timeout: 1}\n"
    process, _ = serve(tmp_path, scripted, extra)
    try:
        tcp_answer(process.port, "giant.example.test", "TXT")
        hog = non_reading_client(process.port)
        # 18 MB of answers: more than the kernel's socket buffers on loopback hold.
        queries = [
            frame(dns.message.make_query("giant.example.test", "TXT", id=i)) for i in range(300)
        ]
        send_some(hog, b"".join(queries), seconds=2)
        time.sleep(3)  # idle for longer than the timeout, with answers still queued
        hog.settimeout(5)
        received = 0
        try:
            while chunk := hog.recv(65536):
                received += len(chunk)
        except ConnectionResetError:
            pass
        hog.close()
        # Cut off (its queued answers dropped), not drained: close() would wait on it forever.
        assert received < 300 * 60_000, received
    finally:
        process.stop()
    process.assert_clean_log()


def test_a_cloaked_block_in_drop_mode_sends_no_empty_datagram_over_udp(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    # The UDP side of finding 17: silence is no datagram at all, on the miss and cached paths.
    process, _ = serve(tmp_path, scripted, drop_mode_config(tmp_path), lists=True)
    try:
        for attempt in ("miss", "cached"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2)
                sock.sendto(dns.message.make_query("cloak.h2.test", "A").to_wire(),
                            ("127.0.0.1", process.port))  # fmt: skip
                with pytest.raises(TimeoutError):
                    got = sock.recv(512)
                    raise AssertionError((attempt, got))
        assert scripted.count("cloak.h2.test", "A") == 1
    finally:
        process.stop()
    process.assert_clean_log()
