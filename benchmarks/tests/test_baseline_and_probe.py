"""The naive baseline on real loopback sockets, against a stub upstream, seen through probe.py."""

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dnslib import QTYPE, RR, A, DNSRecord
from probe import query, semantics, wait_ready

BASELINE = Path(__file__).resolve().parents[1] / "baseline_dnslib.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def upstream():
    """Answers every A query with 192.0.2.1, like the benchmark's NSD wildcard."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(4096)
            except TimeoutError:
                continue
            q = DNSRecord.parse(data)
            reply = q.reply()
            if q.q.qtype == QTYPE.A:
                reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.1"), ttl=60))
            sock.sendto(reply.pack(), addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join(timeout=2)
    sock.close()


def test_baseline_blocks_names_and_subdomains_and_forwards_the_rest(tmp_path, upstream):
    listed = ["bad.example", "worse.test"]
    (tmp_path / "list.txt").write_text("\n".join(listed) + "\n")
    port = free_port()
    argv = [
        sys.executable,
        str(BASELINE),
        "--port",
        str(port),
        "--upstream",
        f"127.0.0.1:{upstream}",
        "--blocklist",
        str(tmp_path / "list.txt"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        ready = wait_ready("127.0.0.1", port, t0, lambda: proc.poll() is None, "bad.example", 10)
        assert ready is not None and ready < 10
        assert query("127.0.0.1", port, "fine.example").addresses == ("192.0.2.1",)
        assert query("127.0.0.1", port, "x.y.worse.test").rcode == "NXDOMAIN"
        sem = semantics("127.0.0.1", port, listed)
        assert sem["exact"] == sem["subdomain"] == "3/3"
        assert sem["normal_answer"] == "NOERROR 192.0.2.1"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_query_to_a_closed_port_is_none():
    assert query("127.0.0.1", free_port(), "x.example", timeout=0.3) is None
