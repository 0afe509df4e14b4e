"""SIGHUP loads a renewed certificate for new connections; open DoT connections keep going."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import time
import urllib.request
from pathlib import Path

import dns.message
import pytest
from tls_helpers import SERVER_NAME, client_context, make_pki, ports, wait_for_port

from tests.stub_upstream import ROOT, LachanProcess, StubUpstream, free_port


def _ask(tls: ssl.SSLSocket, qid: int) -> dns.message.Message:
    query = dns.message.make_query("www.example.test", "A")
    query.id = qid
    wire = query.to_wire()
    tls.sendall(len(wire).to_bytes(2, "big") + wire)
    size = int.from_bytes(_exactly(tls, 2), "big")
    return dns.message.from_wire(_exactly(tls, size))


def _exactly(tls: ssl.SSLSocket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = tls.recv(n - len(data))
        assert chunk, "closed"
        data += chunk
    return data


def _expiry(metrics: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
    match = re.search(r"^lachan_tls_certificate_expiry_seconds\{[^}]*\} (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


def _wait_for_log(process: LachanProcess, text: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while process.stderr().count(text) < count:
        assert time.monotonic() < deadline, process.stderr()
        time.sleep(0.05)


def test_sighup_serves_the_new_certificate_to_new_connections_and_keeps_old_ones(
    tmp_path: Path,
) -> None:
    old, new = make_pki(tmp_path / "old", days=30), make_pki(tmp_path / "new", days=90)
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    shutil.copy(old.cert, cert)
    shutil.copy(old.key, key)
    port, metrics = ports(), free_port(("127.0.0.1",))
    config = (
        f'lists: {{enabled: false}}\npolicies: {{dir: "{ROOT / "policies"}"}}\n'
        f'listen_tls: ["127.0.0.1:{port}"]\nmetrics: {{listen: "127.0.0.1:{metrics}"}}\n'
        f'tls: {{cert: "{cert}", key: "{key}", server_name: {SERVER_NAME}}}\n'
    )
    with StubUpstream() as stub, LachanProcess(tmp_path, [stub.address], config) as process:
        wait_for_port(port)
        before = _expiry(metrics)
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with client_context(old).wrap_socket(raw, server_hostname=SERVER_NAME) as held:
            assert _ask(held, 1).id == 1
            shutil.copy(new.cert, cert)  # what certbot's renewal does, then the deploy hook:
            shutil.copy(new.key, key)
            process.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            _wait_for_log(process, "reloaded", 1)
            assert _ask(held, 2).id == 2  # the open connection was not dropped
        with pytest.raises(ssl.SSLCertVerificationError):
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            client_context(old).wrap_socket(raw, server_hostname=SERVER_NAME).close()
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with client_context(new).wrap_socket(raw, server_hostname=SERVER_NAME) as fresh:
            assert _ask(fresh, 3).id == 3
        after = _expiry(metrics)
        process.assert_clean_log()
    assert 59 * 86400 < after - before < 61 * 86400
