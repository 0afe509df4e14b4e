"""A tiny UDP DNS client for readiness and blocking-semantics probes (never for load)."""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSRecord

UPSTREAM_A, UPSTREAM_AAAA = "192.0.2.1", "2001:db8::1"


@dataclass(frozen=True)
class Answer:
    rcode: str
    addresses: tuple[str, ...]

    @property
    def from_upstream(self) -> bool:
        """True when the name resolved through to the wildcard upstream (i.e. not blocked)."""
        return self.rcode == "NOERROR" and bool({UPSTREAM_A, UPSTREAM_AAAA} & set(self.addresses))

    def describe(self) -> str:
        return f"{self.rcode} {','.join(self.addresses) or '(no data)'}".strip()


def query(host: str, port: int, name: str, qtype: str = "A", timeout: float = 0.5) -> Answer | None:
    """One query over a connected UDP socket; None on timeout or refusal."""
    q = DNSRecord.question(name, qtype)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, port))  # connected: a closed port fails fast (ECONNREFUSED)
            s.send(q.pack())
            deadline = time.monotonic() + timeout
            while True:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                reply = DNSRecord.parse(s.recv(4096))
                if reply.header.id == q.header.id:
                    break
        except (OSError, ValueError, Exception):  # dnslib raises DNSError on garbage
            return None
    addrs = tuple(str(rr.rdata) for rr in reply.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA))
    return Answer(RCODE.get(reply.header.rcode), addrs)


def wait_ready(host: str, port: int, t0: float, alive, blocked_probe: str | None, timeout: float):
    """Seconds from t0 until a random name resolves and (if given) blocked_probe is blocked."""
    n = 0
    while time.monotonic() < t0 + timeout and n < 100_000:
        n += 1
        if not alive():
            return None
        ans = query(host, port, f"ready{n}.p{random.randrange(10**9)}.example.com", timeout=0.2)
        if ans is not None and ans.from_upstream:
            if blocked_probe is None:
                return time.monotonic() - t0
            b = query(host, port, blocked_probe, timeout=0.2)
            if b is not None and not b.from_upstream:
                return time.monotonic() - t0
        time.sleep(0.005)
    return None


def semantics(host: str, port: int, listed: list[str]) -> dict[str, str]:
    """How a peer treats listed names: exact, random subdomain, AAAA; and an unlisted name."""
    picks = [listed[0], listed[len(listed) // 2], listed[-1]]

    def blocked(answers: list[Answer | None]) -> str:
        return f"{sum(1 for a in answers if a is not None and not a.from_upstream)}/3"

    exact = [query(host, port, d, timeout=1.0) for d in picks]
    sub = [query(host, port, f"sub{random.randrange(10**6)}.{d}", timeout=1.0) for d in picks]
    aaaa = [query(host, port, d, "AAAA", timeout=1.0) for d in picks]
    normal = query(host, port, f"normal{random.randrange(10**6)}.example.org", timeout=1.0)
    return {
        "exact": blocked(exact),
        "subdomain": blocked(sub),
        "aaaa": blocked(aaaa),
        "blocked_answer": exact[-1].describe() if exact[-1] else "timeout",
        "normal_answer": normal.describe() if normal else "timeout",
    }
