"""Spoofing resistance and upstream health on a real ``lachan serve`` (issue 11 finding 12,
issue 12's upstream counters): a fresh random source port per query, 0x20 with its fallback,
ICMP errors closing sockets, mismatched replies, failures and RTTs in /metrics, one log line
for a failing upstream."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from hardening_helpers import ScriptedStub, open_fds, sample

from tests.stub_upstream import LachanProcess, StubUpstream, free_port


@pytest.fixture
def scripted() -> Iterator[ScriptedStub]:
    with ScriptedStub() as server:
        yield server


def serve(tmp_path: Path, upstream: str, extra: str = "") -> tuple[LachanProcess, int]:
    metrics_port = free_port(("127.0.0.1",))
    config = (
        "site: {id: h2-up, kind: isp}\nlists: {enabled: false}\n"
        f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}\n'
        "upstream: {timeout: 0.2}\n" + extra
    )
    return LachanProcess(tmp_path, [upstream], config, ipv6=False).start(), metrics_port


def misses(port: int, names: list[str], window: int = 50) -> int:
    """Ask every name over UDP, ``window`` at a time; the number of answers received."""
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for start in range(0, len(names), window):
            chunk = names[start : start + window]
            for i, name in enumerate(chunk):
                sock.sendto(dns.message.make_query(name, "A", id=i).to_wire(), ("127.0.0.1", port))
            for _ in chunk:
                try:
                    sock.recv(4096)
                except TimeoutError:
                    break
                answered += 1
    return answered


def test_three_thousand_misses_leave_from_at_least_2900_source_ports(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    process, _ = serve(tmp_path, scripted.address)
    try:
        names = [f"port{i}.example.test" for i in range(3000)]
        assert misses(process.port, names) == 3000
        assert sum(scripted.udp_sources.values()) == 3000
        assert len(scripted.udp_sources) >= 2900, len(scripted.udp_sources)
        # 0x20: the names left in mixed case (each has 15+ letters; all-lowercase is 2^-15).
        asked = [dns.message.from_wire(m).question[0].name.to_text() for m in scripted.received]
        assert sum(name == name.lower() for name in asked) <= 5
    finally:
        process.stop()
    process.assert_clean_log()


def test_an_upstream_that_lowercases_questions_still_resolves_without_0x20(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    scripted.lowercase = True
    process, metrics_port = serve(tmp_path, scripted.address)
    try:
        for i in range(20):
            reply = dns.query.udp(dns.message.make_query(f"lower{i}.example.test", "A"),
                                  "127.0.0.1", port=process.port, timeout=3)  # fmt: skip
            assert reply.rcode() == dns.rcode.NOERROR and reply.answer, i
        # One reply in the wrong case turned 0x20 off: that query was asked twice, no other.
        assert scripted.count("lower0.example.test") == 2
        assert all(scripted.count(f"lower{i}.example.test") == 1 for i in range(1, 20))
        assert sample(metrics_port, "lachan_upstream_mismatched_total") == 1
    finally:
        process.stop()
    assert process.stderr().count("does not keep the letter case") == 1
    process.assert_clean_log()


def test_a_timing_out_upstream_moves_the_failure_counter_and_logs_one_line(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    process, metrics_port = serve(tmp_path, scripted.address)
    try:
        assert misses(process.port, ["ok.example.test"]) == 1
        assert sample(metrics_port, "lachan_upstream_queries_total", upstream=scripted.address) == 1
        assert sample(metrics_port, "lachan_upstream_duration_seconds_count") == 1
        scripted.mode = "drop"
        for i in range(5):
            reply = dns.query.udp(dns.message.make_query(f"dead{i}.example.test", "A"),
                                  "127.0.0.1", port=process.port, timeout=3)  # fmt: skip
            assert reply.rcode() == dns.rcode.SERVFAIL
        failures = sample(metrics_port, "lachan_upstream_failures_total", reason="timeout")
        assert failures >= 5
        assert sample(metrics_port, "lachan_upstream_queries_total") == 1 + failures
    finally:
        process.stop()
    log = process.stderr()
    assert log.count(f"upstream {scripted.address} failing: timeout") == 1, log
    process.assert_clean_log()


def test_icmp_errors_close_every_socket_and_count_as_network_failures(tmp_path: Path) -> None:
    with StubUpstream() as gone:
        dead = gone.address  # nothing listens here any more: ICMP port unreachable
    process, metrics_port = serve(tmp_path, dead)
    try:
        assert process.process is not None
        before = open_fds(process.process.pid)
        names = [f"icmp{i}.example.test" for i in range(600)]
        misses(process.port, names)
        assert open_fds(process.process.pid) <= before + 2
        assert sample(metrics_port, "lachan_upstream_failures_total", reason="network") >= 600
    finally:
        process.stop()
    process.assert_clean_log()


def test_replies_with_the_wrong_id_are_exported_as_mismatched(
    tmp_path: Path, scripted: ScriptedStub
) -> None:
    process, metrics_port = serve(tmp_path, scripted.address)
    try:
        scripted.mode = "wrong_id"
        reply = dns.query.udp(dns.message.make_query("spoofed.example.test", "A"),
                              "127.0.0.1", port=process.port, timeout=3)  # fmt: skip
        assert reply.rcode() == dns.rcode.SERVFAIL
        assert sample(metrics_port, "lachan_upstream_mismatched_total") >= 1
    finally:
        process.stop()
    process.assert_clean_log()
