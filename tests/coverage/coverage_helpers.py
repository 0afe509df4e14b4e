"""Helpers for coverage tests: signed ledgers for registered sites, and fake DNS sites."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, TXT, A, DNSRecord

from resolver.audit.accumulator import PeriodCounts
from resolver.audit.keys import inline_public, load_private_key, load_public_key, write_keypair
from resolver.audit.ledger import FilterState, Ledger
from resolver.coverage.canary import CANARY_NAME, CanaryStatus, format_canary

T0 = 1_764_288_000  # 2025-11-28T00:00:00Z
HOUR = 3600
TEST_NAME = "blocked-test.example"


def write_ledger(
    path: Path, keydir: Path, site: str, kind: str, instance: str, hours: range,
    index_time: int = T0, blocked: int = 5,
) -> None:  # fmt: skip
    """Hourly records for ``hours`` (offsets from T0), each with 100 allowed + ``blocked``."""
    key = load_private_key(keydir / "audit.key")
    state = FilterState("sha256:idx", index_time, "sha256:pol", "0.1.0")
    path.parent.mkdir(parents=True, exist_ok=True)
    with Ledger.open(path, key, site=site, site_kind=kind, instance=instance) as led:
        for h in hours:
            answers = {("allowed", "none", "school"): 100, ("blocked", "adult", "school"): blocked}
            led.append(PeriodCounts(T0 + h * HOUR, T0 + (h + 1) * HOUR, answers, {}), state)


def site_key(root: Path, site: str) -> Path:
    """A fresh key pair for ``site`` under ``root/keys/site``."""
    out = root / "keys" / site
    write_keypair(out)
    return out


def inline_key(keydir: Path) -> str:
    return inline_public(load_public_key(keydir / "audit.pub"))


class FakeSite(asyncio.DatagramProtocol):
    """A DNS responder that behaves like a filtering lachan, an open resolver, or a black hole."""

    def __init__(self, mode: str, site: str) -> None:
        self.mode, self.site = mode, site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.mode == "silent":
            return
        query = DNSRecord.parse(data)
        reply = query.reply()
        name = str(query.q.qname).rstrip(".").lower()
        if name == CANARY_NAME and self.mode != "open":
            status = CanaryStatus(self.site, "school", "sha256:idx", 600, "0.1.0")
            for text in format_canary(status):
                reply.add_answer(RR(query.q.qname, QTYPE.TXT, rdata=TXT(text), ttl=0))
        elif name == TEST_NAME and self.mode == "filter":
            reply.header.rcode = RCODE.NXDOMAIN
        elif name == TEST_NAME and self.mode == "nullip":
            reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("0.0.0.0"), ttl=0))
        elif name == TEST_NAME:
            reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("104.16.0.1"), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        self.transport.sendto(reply.pack(), addr)  # type: ignore[attr-defined]


async def start_site(mode: str, site: str) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: FakeSite(mode, site), local_addr=("127.0.0.1", 0)
    )
    return transport, transport.get_extra_info("sockname")[1]
