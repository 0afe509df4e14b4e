"""Rate limits per device ID on the encrypted listeners (resolver/devices.py DeviceLimits)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import dns.flags
import dns.message
from tls_helpers import (
    SERVER_NAME,
    client_context,
    encrypted_config,
    make_pki,
    ports,
    wait_for_port,
)

from tests.stub_upstream import LachanProcess, StubUpstream

LIMITS = (
    "ratelimit:\n"
    "  ipv4: [{prefix: 32, rate: 1, burst: 5}, {prefix: 24, rate: 1, burst: 5}]\n"
    "  ipv6: [{prefix: 64, rate: 1, burst: 5}, {prefix: 56, rate: 1, burst: 5}]\n"
    "  action: truncate\n  slip: 1\n"
)


def _burst(port: int, context: ssl.SSLContext, sni: str, count: int) -> list[bool]:
    """Send ``count`` pipelined queries on one DoT connection; whether each answer has TC."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with context.wrap_socket(raw, server_hostname=sni) as tls:
        wire = b""
        for i in range(count):
            query = dns.message.make_query("status.lachan.arpa", "TXT")
            query.id = i
            data = query.to_wire()
            wire += len(data).to_bytes(2, "big") + data
        tls.sendall(wire)
        truncated = []
        buffer = b""
        while len(truncated) < count:
            chunk = tls.recv(65536)
            assert chunk, "closed early"
            buffer += chunk
            while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                size = int.from_bytes(buffer[:2], "big")
                answer = dns.message.from_wire(buffer[2 : 2 + size])
                truncated.append(bool(answer.flags & dns.flags.TC))
                buffer = buffer[2 + size :]
    return truncated


def test_each_device_has_its_own_buckets_apart_from_its_address(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    port = ports()
    with StubUpstream() as stub:
        process = LachanProcess(
            tmp_path, [stub.address], encrypted_config(pki, dot=port, extra=LIMITS)
        )
        with process:
            wait_for_port(port)
            context = client_context(pki)
            kid = _burst(port, context, "kid-an." + SERVER_NAME, 12)
            lab = _burst(port, context, "lab-01." + SERVER_NAME, 5)  # same address, own buckets
            bare = _burst(port, context, SERVER_NAME, 5)  # the address's buckets: still full
            kid_again = _burst(port, context, "kid-an." + SERVER_NAME, 3)
            process.assert_clean_log()
    assert kid[:5] == [False] * 5 and all(kid[6:])  # the burst, then limited
    assert lab == [False] * 5
    # The address's own bucket (burst 5) was not drained by the devices' 20 queries; the
    # test harness's readiness probe over UDP may have spent a token of it.
    assert bare.count(False) >= 4
    assert any(kid_again)  # kid-an's buckets stay drained whatever connection it uses
