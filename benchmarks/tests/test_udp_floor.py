"""udp_floor.c, the kernel-cost floor of the README: it builds, and answers each way."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import pytest

SOURCE = Path(__file__).resolve().parents[1] / "udp_floor.c"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("batched", ["0", "1"])
def test_every_query_comes_back_as_a_response(tmp_path, batched):
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler builds the extension, so one is installed"
    binary = tmp_path / "udp_floor"
    subprocess.run([compiler, "-O2", "-o", binary, SOURCE], check=True)
    port = free_port()
    server = subprocess.Popen([binary, str(port), batched])
    try:
        for number in range(20):
            query = dns.message.make_query(f"n{number}.example", "A")
            reply = _ask(query, port)
            assert reply.id == query.id and reply.flags & dns.flags.QR
            assert reply.question == query.question
    finally:
        server.kill()
        server.wait()


def _ask(query: dns.message.Message, port: int) -> dns.message.Message:
    deadline = time.monotonic() + 5
    while True:  # the first tries may come before the responder has bound its port
        try:
            return dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
        except (dns.exception.Timeout, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
