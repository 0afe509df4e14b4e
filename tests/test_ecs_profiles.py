"""Trusted ECS on a real UdpListener on loopback: the memo never answers before ECS chose the
profile, and the listener still takes part in the choice (issue 11, findings 4 and 5)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.message
import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import Resolver
from resolver.state import build_state
from resolver.stats import Stats
from resolver.transport.udp import UdpListener
from tests.stub_upstream import StubUpstream

FORWARDER, OTHER = "127.0.0.5", "127.0.0.6"
NAME = "blocked.example.test"  # kid denies it; the stub answers it with 192.0.2.1


@pytest.fixture
def upstream() -> Iterator[StubUpstream]:
    with StubUpstream() as stub:
        yield stub


def _port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resolver(tmp: Path, upstream: StubUpstream, clients: str) -> Resolver:
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "kid.yaml").write_text(f"name: kid\ndeny: [{NAME}]\n", encoding="utf-8")
    (policies / "adult.yaml").write_text("name: adult\n", encoding="utf-8")
    text = (
        f"upstreams: ['{upstream.address}']\nlists: {{enabled: false}}\n"
        f"policies: {{dir: '{policies}'}}\nclients: {clients}\n"
    )
    cfg = config.parse(text, "ecs.yaml")
    return build_resolver(cfg, build_state(cfg), Stats())


def _exchange(port: int, source: str, data: bytes) -> dns.message.Message:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(3)
        sock.sendto(data, ("127.0.0.1", port))
        return dns.message.from_wire(sock.recv(65535))


def _serve_and_ask(resolver: Resolver, port: int, asks: list[tuple[str, bytes]]) -> list:
    """Serve on 127.0.0.1:port and send each (source, packet) in turn; the answers."""

    async def main() -> list[dns.message.Message]:
        loop = asyncio.get_running_loop()
        listener = UdpListener(resolver, ("127.0.0.1", port))
        transport, _ = await loop.create_datagram_endpoint(
            lambda: listener, local_addr=("127.0.0.1", port)
        )
        try:
            return [await asyncio.to_thread(_exchange, port, s, d) for s, d in asks]
        finally:
            transport.close()
            resolver.close()

    return asyncio.run(main())


def _query(subnet: str, query_id: int) -> bytes:
    message = dns.message.make_query(
        NAME, "A", use_edns=0, options=[dns.edns.ECSOption(subnet, 24)]
    )
    message.id = query_id
    return message.to_wire()


def _addresses(message: dns.message.Message) -> list[str]:
    return [r.to_text() for rrset in message.answer for r in rrset]


def test_the_memo_is_not_consulted_before_trusted_ecs_chooses_the_profile(
    tmp_path: Path, upstream: StubUpstream
) -> None:
    clients = (
        f'{{default: adult, networks: {{"10.1.0.0/24": kid}}, trusted_ecs: ["{FORWARDER}/32"]}}'
    )
    resolver = _resolver(tmp_path, upstream, clients)
    # The untrusted client sends the exact bytes the forwarder will (ECS ignored: adult),
    # twice: a miss, then a cache hit, which prepares the answer for identical packets.
    # The forwarder asked before, so the listener knows it (and its prepared answers).
    packet = _query("10.1.0.0", 7)
    known = (FORWARDER, dns.message.make_query("www.example.test", "A").to_wire())
    _, miss, hit, forwarded = _serve_and_ask(
        resolver, _port(), [known, (OTHER, packet), (OTHER, packet), (FORWARDER, packet)]
    )
    assert _addresses(miss) == _addresses(hit) == ["192.0.2.1"]
    assert _addresses(forwarded) == [] and forwarded.id == 7, forwarded


def test_with_trusted_ecs_the_listener_still_chooses_the_profile(
    tmp_path: Path, upstream: StubUpstream
) -> None:
    port = _port()
    clients = (
        f'{{default: adult, listeners: {{"127.0.0.1:{port}": kid}}, '
        f'trusted_ecs: ["{FORWARDER}/32"]}}'
    )
    resolver = _resolver(tmp_path, upstream, clients)
    # 10.9.0.0/24 is in no network: the listener decides, as for a client without ECS.
    plain, with_ecs = _serve_and_ask(
        resolver,
        port,
        [(OTHER, dns.message.make_query(NAME, "A").to_wire()), (FORWARDER, _query("10.9.0.0", 8))],
    )
    assert _addresses(plain) == [] and _addresses(with_ecs) == [], (plain, with_ecs)
