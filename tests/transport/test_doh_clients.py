"""Browsers' view of DoH: headless Chromium and curl resolve through lachan's DoH and load an
allowed page from a local HTTP server, not a blocked one.

Chromium takes its DoH settings only from managed policy, which on Linux it reads from
/etc/chromium/policies/managed/ (DnsOverHttpsMode "secure": DoH only, no fallback to the
system resolver). The test writes a policy file there for the length of one test and removes it
afterwards, so it needs root (CI runs as root on a throwaway machine). The template is an IP
literal (https://127.0.0.1:PORT/dns-query/kid-an; the test certificate names 127.0.0.1), so no
bootstrap lookup is needed. Chromium trusts the test CA through an NSS database in its HOME
(certutil, Debian libnss3-tools): without it every DoH handshake fails with
net::ERR_CERT_AUTHORITY_INVALID (-202) and nothing resolves (Chromium 156, 2026-12-06). The
command-line equivalent of the policy (--enable-features=DnsOverHttps:...) sent no DoH query at
all, hence the policy file. curl --doh-url is tested as a client of its own.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from tls_helpers import Pki, encrypted_config, make_pki, ports, wait_for_port

from tests.stub_upstream import LachanProcess, StubUpstream, free_port
from tests.tools import require

POLICY_DIR = Path("/etc/chromium/policies/managed")


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
        self.send_header("content-type", "text/plain; charset=utf-8")
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


@contextlib.contextmanager
def _managed_policy(values: dict[str, str]) -> Iterator[None]:
    """Chromium's managed policy for the length of the block; the file (and any folder made
    for it) is removed afterwards, whatever happens."""
    if os.geteuid() != 0:
        pytest.fail(f"the Chromium DoH test writes {POLICY_DIR}: run it as root (CI does)",
                    pytrace=False)  # fmt: skip
    made = [folder for folder in (POLICY_DIR, *POLICY_DIR.parents) if not folder.exists()]
    path = POLICY_DIR / "lachan-test-doh.json"
    try:
        POLICY_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
        yield
    finally:
        path.unlink(missing_ok=True)
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def _trust_in_nss(home: Path, ca: Path) -> None:
    """The test CA as a trusted TLS issuer in the NSS database Chromium reads from HOME."""
    certutil = require("certutil")
    nss = home / ".pki" / "nssdb"
    nss.mkdir(parents=True)
    subprocess.run([certutil, "-N", "-d", f"sql:{nss}", "--empty-password"], check=True,
                   capture_output=True, timeout=30)  # fmt: skip
    subprocess.run([certutil, "-A", "-d", f"sql:{nss}", "-n", "lachan test CA", "-t", "C,,",
                    "-i", str(ca)], check=True, capture_output=True, timeout=30)  # fmt: skip


def _chromium(home: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium loads ``url`` and prints the page's DOM (an empty one if it failed)."""
    return subprocess.run(
        [require("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         f"--user-data-dir={home / 'profile'}", "--dump-dom", url],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def _queries_by_transport(metrics: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read()
    found: dict[str, float] = {}
    for line in text.decode().splitlines():
        match = re.match(r'lachan_queries_total\{.*transport="(\w+)".*\} ([0-9.e+]+)$', line)
        if match:
            found[match.group(1)] = found.get(match.group(1), 0.0) + float(match.group(2))
    return found


def _logged(path: Path, names: set[str], seconds: float = 10.0) -> list[dict[str, str]]:
    """The query log's lines once every name in ``names`` is in it (it is flushed in batches)."""
    deadline = time.monotonic() + seconds
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        records = [json.loads(line) for line in lines]
        if names <= {r["qname"].rstrip(".") for r in records} or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def test_chromium_with_a_doh_policy_loads_an_allowed_page_and_not_a_blocked_one(
    tmp_path: Path, page: int
) -> None:
    pki = make_pki(tmp_path / "pki")
    home = tmp_path / "home"
    _trust_in_nss(home, pki.ca)
    port, metrics = ports(), free_port(("127.0.0.1",))
    log = tmp_path / "queries.jsonl"
    extra = f'metrics: {{listen: "127.0.0.1:{metrics}"}}\nquerylog: {{path: "{log}"}}\n'
    # kid-an's profile is under16 (tls_helpers.encrypted_config): a device ID only DoH carries.
    policy = {
        "DnsOverHttpsMode": "secure",
        "DnsOverHttpsTemplates": f"https://127.0.0.1:{port}/dns-query/kid-an",
    }
    with LoopbackStub() as stub, _managed_policy(policy):
        process = LachanProcess(
            tmp_path, [stub.address], encrypted_config(pki, doh=port, extra=extra)
        )
        with process:
            wait_for_port(port)
            allowed = _chromium(home, f"http://hoc-toan.test:{page}/")
            # "casino" is one of under16's keywords (policies/under16.yaml).
            blocked = _chromium(home, f"http://casino-vui.test:{page}/")
            queries = _queries_by_transport(metrics)
            records = _logged(log, {"hoc-toan.test", "casino-vui.test"})
            process.assert_clean_log()
        forwarded = (stub.count("hoc-toan.test", "A"), stub.count("casino-vui.test", "A"))
    assert "Xin chào from the local page" in allowed.stdout, allowed.stderr[-2000:]
    assert "Xin chào" not in blocked.stdout
    assert "net::ERR_NAME_NOT_RESOLVED" in blocked.stderr, blocked.stderr[-2000:]
    # Every query reached lachan over DoH, none over plain DNS (secure mode: no fallback).
    assert queries.get("doh", 0) >= 2 and queries.get("udp", 0) == queries.get("tcp", 0) == 0, (
        queries
    )
    # The profile is kid-an's, so the device ID came from the DoH path.
    seen = {
        (r["qname"].rstrip("."), r["action"], r["profile"]) for r in records if r["qtype"] == "A"
    }
    assert ("hoc-toan.test", "allowed", "under16") in seen, records
    assert ("casino-vui.test", "blocked", "under16") in seen, records
    assert forwarded[0] >= 1 and forwarded[1] == 0, forwarded  # the blocked name never left
