"""Shared by the hardening tests: a scripted upstream with huge and cloaked answers (and one
that lower-cases questions), a process's RSS and open descriptors, raw TCP clients."""

from __future__ import annotations

import os
import socket
import time
import urllib.request

import dns.flags
import dns.message
import dns.rdata
import dns.rdatatype
import dns.rrset
from prometheus_client.parser import text_string_to_metric_families

from tests.stub_upstream import StubUpstream

# 240 strings of 250 bytes: a ~60 KB TXT answer, the largest a TCP frame comfortably holds.
GIANT_TXT = " ".join('"' + chr(ord("a") + i % 26) * 250 + '"' for i in range(240))
_GIANT = dns.rdata.from_text("IN", "TXT", GIANT_TXT)  # parsed once: it is 60 KB of text
CLOAK_TARGET = "blocked-h2.test"  # denied by the test profile; reached only through a CNAME
CLOAK_V4 = "198.51.100.77"


class ScriptedStub(StubUpstream):
    """The test stub, plus ``giant*.example.test TXT`` (~60 KB, TC=1 over UDP), ``cloak*``
    names CNAMEd to CLOAK_TARGET, and (``lowercase``) questions echoed in lower case."""

    lowercase = False

    def reply_to(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        reply, delay = super().reply_to(data, transport)  # counts the query, applies modes
        if reply is None or self.mode != "normal":
            return reply, delay
        query = dns.message.from_wire(data)
        name = query.question[0].name
        first = name.labels[0].lower()
        if first.startswith(b"giant") and query.question[0].rdtype == dns.rdatatype.TXT:
            reply = _giant(query, transport)
        elif first.startswith(b"cloak"):
            reply = _cloaked(query)
        if self.lowercase:
            end = _question_end(reply)
            reply = reply[:12] + reply[12:end].lower() + reply[end:]
        return reply, delay


def _giant(query: dns.message.Message, transport: str) -> bytes:
    response = dns.message.make_response(query)
    if transport == "udp":  # far above any UDP size: TC=1, ask again over TCP
        response.flags |= dns.flags.TC
        return response.to_wire()
    response.answer.append(dns.rrset.from_rdata(query.question[0].name, 300, _GIANT))
    return response.to_wire(max_size=65535)


def _cloaked(query: dns.message.Message) -> bytes:
    response = dns.message.make_response(query)
    owner = query.question[0].name
    response.answer.append(dns.rrset.from_text(owner, 300, "IN", "CNAME", CLOAK_TARGET + "."))
    if query.question[0].rdtype == dns.rdatatype.A:
        response.answer.append(dns.rrset.from_text(CLOAK_TARGET + ".", 300, "IN", "A", CLOAK_V4))
    return response.to_wire()


def _question_end(wire: bytes) -> int:
    pos = 12
    while wire[pos]:
        pos += wire[pos] + 1
    return pos + 5


# -- the server process, seen from outside ------------------------------------------------
def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc/PID/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- raw TCP clients ------------------------------------------------------------------------
def frame(message: dns.message.Message | bytes) -> bytes:
    data = message if isinstance(message, bytes) else message.to_wire()
    return len(data).to_bytes(2, "big") + data


def non_reading_client(port: int) -> socket.socket:
    """A connection that will never read what it is sent."""
    return socket.create_connection(("127.0.0.1", port), timeout=2)


def send_some(sock: socket.socket, data: bytes, seconds: float = 0.05) -> bool:
    """Send ``data``; False when the server stopped reading (the send did not finish)."""
    sock.settimeout(seconds)
    try:
        sock.sendall(data)
    except (TimeoutError, ConnectionError):
        return False
    return True


def closed_at_once(sock: socket.socket, seconds: float = 2.0) -> bool:
    """The server closed (or reset) the connection without sending a byte."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def wait_for(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def sample(port: int, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples at 127.0.0.1:port/metrics whose labels include ``labels``
    (0.0 when there are none)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode("utf-8")
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total
