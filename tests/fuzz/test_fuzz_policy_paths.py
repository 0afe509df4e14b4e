"""Seeded interleavings of the paths an answer can take (issue 11): cache hits, prepared
answers (memo), misses, serve-stale while the upstream flaps, trusted and untrusted ECS, and
upstream answers whose CNAME chains end in a blocked name. A real UdpListener on loopback
serves a real client socket; the clock jumps ahead at random so entries expire and go stale.

The oracle is independent of lachan: the profile each packet must get (its source, or the
ECS subnet when the forwarder sent it), and for the kid profile no answer may ever carry the
cloaked address, Google's unrewritten address, or any address at all for ANY www.google.com.
Every reply parses with dnspython and echoes the query's ID and question.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import Resolver
from resolver.state import build_state
from resolver.stats import Stats
from resolver.transport.udp import UdpListener
from tests.stub_upstream import StubUpstream

STEPS = 400
KID, ADULT, FORWARDER = "127.0.0.1", "127.0.0.2", "127.0.0.5"
CLOAK_V4, GOOGLE_V4, SAFE_V4 = "198.51.100.66", "142.250.0.1", "216.239.38.120"
ECS = {"kid": ("10.1.0.0", 24), "adult": ("10.2.0.0", 24)}


class ChainUpstream(StubUpstream):
    """``c<N>.cloak.test``: a chain of N+1 CNAMEs ending in blocked.test (A CLOAK_V4);
    www.google.com (A, and ANY with its A) and its SafeSearch name; the stub zone otherwise.
    ``mode`` (servfail, drop) is set by the test between queries: the upstream flaps."""

    def reply_to(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        reply, delay = super().reply_to(data, transport)
        if reply is None or self.mode != "normal":
            return reply, delay
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text().lower()
        response = dns.message.make_response(query)
        if name.endswith(".cloak.test."):
            owner = name
            for hop in range(int(name.split(".")[0][1:])):
                target = f"hop{hop}.{name}"
                response.answer.append(dns.rrset.from_text(owner, 60, "IN", "CNAME", target))
                owner = target
            response.answer.append(dns.rrset.from_text(owner, 60, "IN", "CNAME", "blocked.test."))
            response.answer.append(dns.rrset.from_text("blocked.test.", 60, "IN", "A", CLOAK_V4))
        elif name == "www.google.com.":
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", GOOGLE_V4))
        elif name == "forcesafesearch.google.com.":
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", SAFE_V4))
        else:
            return reply, delay
        return response.to_wire(), 0.0


class Clock:
    """Monotonic time plus jumps: upstream timeouts still expire, cache entries age fast."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skew


@pytest.fixture
def upstream() -> Iterator[ChainUpstream]:
    with ChainUpstream(seed=3) as stub:
        yield stub


def _resolver(tmp: Path, upstream: StubUpstream, clock: Clock) -> Resolver:
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "kid.yaml").write_text(
        "name: kid\ndeny: [blocked.test]\nsafe_search: {google: 'on'}\n", encoding="utf-8"
    )
    (policies / "adult.yaml").write_text("name: adult\n", encoding="utf-8")
    text = f"""
upstreams: ['{upstream.address}']
upstream: {{timeout: 0.05, attempts: 1}}
lists: {{enabled: false}}
policies: {{dir: "{policies}"}}
cache: {{serve_stale: true, stale_window: 3600}}
clients:
  default: adult
  networks: {{"{KID}/32": kid, "10.1.0.0/16": kid}}
  trusted_ecs: ["{FORWARDER}/32"]
"""
    cfg = config.parse(text, "fuzz.yaml")
    return build_resolver(cfg, build_state(cfg), Stats(), clock)


def _packet(rng: random.Random) -> tuple[str, str, dns.message.Message]:
    """(source, the profile it must get, the query) for one random step."""
    name = rng.choice([f"c{rng.randrange(2)}.cloak.test", "www.google.com", "www.example.test"])
    rdtype = "ANY" if name == "www.google.com" and rng.random() < 0.3 else "A"
    source = rng.choice([KID, ADULT, FORWARDER])
    options, expected = [], {KID: "kid", ADULT: "adult", FORWARDER: "adult"}[source]
    if rng.random() < 0.6:  # ECS: believed only from the forwarder
        profile = rng.choice(list(ECS))
        options = [dns.edns.ECSOption(*ECS[profile])]
        expected = profile if source == FORWARDER else expected
    query = dns.message.make_query(name, rdtype, use_edns=0, options=options)
    query.id = 1000  # one ID: identical packets from different sources, the memo's case
    return source, expected, query


def _exchange(port: int, source: str, data: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1.0)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def _check(expected: str, query: dns.message.Message, wire: bytes) -> None:
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id and reply.question == query.question
    if expected != "kid":
        return
    found = {r.to_text() for rrset in reply.answer if rrset.rdtype == 1 for r in rrset}
    assert CLOAK_V4 not in found and GOOGLE_V4 not in found, (query, reply)
    if query.question[0].rdtype == dns.rdatatype.ANY:
        assert not found, (query, reply)


def test_stale_memo_ecs_and_cname_chain_interleavings(tmp_path: Path, upstream: ChainUpstream):
    rng, clock = random.Random(20261206), Clock()
    resolver = _resolver(tmp_path, upstream, clock)
    seen: dict[str, int] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: UdpListener(resolver, ("127.0.0.1", 0)), local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            for _ in range(STEPS):
                upstream.mode = rng.choices(["normal", "servfail", "drop"], [6, 3, 1])[0]
                clock.skew += rng.choice([0] * 12 + [1, 30, 90, 400])
                source, expected, query = _packet(rng)
                wire = await asyncio.to_thread(_exchange, port, source, query.to_wire())
                outcome = "timeout" if wire is None else f"{expected}:{wire[3] & 15}"
                seen[outcome] = seen.get(outcome, 0) + 1
                if wire is not None:
                    _check(expected, query, wire)
        finally:
            transport.close()
            resolver.close()

    asyncio.run(main())
    answers = resolver.stats.answers
    # The run did cover what it is for: stale answers, cloaking blocks, both profiles.
    assert any(key[0] == "stale" for key in answers), answers
    assert any(key[0] == "blocked" and key[2] == "kid" for key in answers), answers
    assert seen.get("kid:0", 0) > 20 and seen.get("adult:0", 0) > 20, seen
    assert seen.get("timeout", 0) < STEPS // 20, seen
