"""The cache's byte bound on a real ``lachan serve`` (issue 11 finding 9, issue 13): many
~60 KB answers, fetched over TCP from the upstream, keep RSS within ``cache.max_memory``."""

from __future__ import annotations

import socket
from pathlib import Path

import dns.message
from hardening_helpers import ScriptedStub, rss_bytes, sample

from tests.stub_upstream import LachanProcess, free_port

MiB = 1024 * 1024


def ask_all(port: int, names: list[str], window: int = 10) -> int:
    """Ask every name over UDP (a TC=1 answer each: they are too big), ``window`` at a time."""
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(6)
        for start in range(0, len(names), window):
            chunk = names[start : start + window]
            for i, name in enumerate(chunk):
                query = dns.message.make_query(name, "TXT", id=i)
                sock.sendto(query.to_wire(), ("127.0.0.1", port))
            for _ in chunk:
                try:
                    sock.recv(4096)
                except TimeoutError:
                    break
                answered += 1
    return answered


def test_a_thousand_64k_answers_stay_within_max_memory(tmp_path: Path) -> None:
    metrics_port = free_port(("127.0.0.1",))
    config = (
        "site: {id: h2-cache, kind: isp}\nlists: {enabled: false}\ncache: {max_memory: 8}\n"
        f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}\n'
    )
    with ScriptedStub() as stub:
        process = LachanProcess(tmp_path, [stub.address], config, ipv6=False).start()
        try:
            assert process.process is not None
            assert ask_all(process.port, [f"giant{i}.warm.example.test" for i in range(100)]) == 100
            baseline = rss_bytes(process.process.pid)
            names = [f"giant{i}.example.test" for i in range(1_000)]
            assert ask_all(process.port, names) == 1_000  # ~60 MB of answers went into the cache
            grown = rss_bytes(process.process.pid) - baseline
            held = sample(metrics_port, "lachan_cache_bytes")
            assert 7 * MiB < held <= 8 * MiB, held
            assert grown < 8 * MiB + 16 * MiB, f"RSS grew {grown / MiB:.0f} MiB"
            # The newest are cached (answered without asking again), the oldest were evicted.
            asked = sum(stub.count(name) for name in names[-20:])
            assert ask_all(process.port, names[-20:]) == 20
            assert sum(stub.count(name) for name in names[-20:]) == asked
            assert ask_all(process.port, names[:20]) == 20
            assert sum(stub.count(name) for name in names[:20]) == 4 * 20  # UDP+TCP, twice
        finally:
            process.stop()
        process.assert_clean_log()
