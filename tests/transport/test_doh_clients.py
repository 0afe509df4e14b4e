"""A browser's view of DoH: curl resolves through lachan's DoH, loads an allowed page, not a blocked one.

Headless Chromium is not used: its DoH settings come from managed policy (DnsOverHttpsMode,
DnsOverHttpsTemplates), which Chromium on Linux reads only from /etc/chromium/policies/managed/,
outside the test's folder. The test CA could be trusted with --ignore-certificate-errors-spki-list,
but the command-line stand-in for the policy (--enable-features=DnsOverHttps:Fallback/false/
Templates/...) sent no DoH query at all in Chromium 156 (tried on 2026-12-06).
curl, with the same DoH URL and an explicit CA, is the stand-in.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from tls_helpers import Pki, encrypted_config, make_pki, ports, wait_for_port

from tests.stub_upstream import LachanProcess, StubUpstream


class LoopbackStub(StubUpstream):
    """Every name's A record is 127.0.0.1 (so a page can be served from this machine)."""

    def reply_to(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        super().reply_to(data, transport)  # counts the query
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "127.0.0.1"))
        return response.to_wire(), 0.0


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = "Xin chào from the local page".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _curl(doh: str, pki: Pki, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--doh-url", doh, "--cacert", str(pki.ca), url],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_curl_resolves_through_doh_and_the_device_profile_blocks_a_name(
    tmp_path: Path, page: int
) -> None:
    pki = make_pki(tmp_path / "pki")
    port = ports()
    with LoopbackStub() as stub:
        process = LachanProcess(tmp_path, [stub.address], encrypted_config(pki, doh=port))
        with process:
            wait_for_port(port)
            doh = f"https://127.0.0.1:{port}/dns-query/kid-an"
            allowed = _curl(doh, pki, f"http://hoc-toan.test:{page}/")
            # "casino" is one of under16's keywords (policies/under16.yaml): kid-an's profile.
            blocked = _curl(doh, pki, f"http://casino-vui.test:{page}/")
            adult_default = _curl(
                f"https://127.0.0.1:{port}/dns-query", pki, f"http://casino-vui.test:{page}/"
            )
            process.assert_clean_log()
        assert stub.count("hoc-toan.test", "A") >= 1  # resolved by lachan, through the upstream
    assert allowed.returncode == 0 and "Xin chào" in allowed.stdout, allowed.stderr
    assert blocked.returncode == 6 and "resolve" in blocked.stderr.lower(), (
        blocked
    )  # CURLE_COULDNT_RESOLVE_HOST
    # Without the device ID the address's profile (isp-default) applies: no keyword blocks.
    assert adult_default.returncode == 0, adult_default.stderr
