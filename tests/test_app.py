"""Server.start in resolver/app.py: the order in which listeners open."""

from __future__ import annotations

import asyncio
import socket

from resolver import app as app_module
from resolver import config
from resolver.app import Server, build_resolver
from resolver.state import build_state
from resolver.stats import Stats


def test_every_tcp_listener_is_open_before_any_udp_socket_answers() -> None:
    # A probe that sees a UDP answer may go to TCP at once (a readiness check, dnsdist's
    # health check, a truncated answer's retry): TCP must already be listening everywhere.
    text = (
        "upstreams: ['127.0.0.1:9']\nlists: {enabled: false}\nlisten: ['127.0.0.1:0', '[::1]:0']\n"
    )
    cfg = config.parse(text, "app.yaml")

    async def main() -> list[list[int]]:
        server = Server(cfg, build_resolver(cfg, build_state(cfg), Stats()))
        loop = asyncio.get_running_loop()
        opened = loop.create_datagram_endpoint
        seen: list[list[int]] = []

        async def endpoint(factory, sock: socket.socket):  # type: ignore[no-untyped-def]
            port = sock.getsockname()[1]
            with socket.create_connection((sock.getsockname()[0], port), timeout=1):
                pass  # this listener's TCP port accepts before its UDP socket serves
            seen.append([len(server.tcp_servers), port])
            return await opened(factory, sock=sock)

        loop.create_datagram_endpoint = endpoint  # type: ignore[method-assign,assignment]
        try:
            await server.start()
        finally:
            await server.stop(grace=0)
        return seen

    seen = asyncio.run(main())
    assert [tcp for tcp, _ in seen] == [2, 2]  # both TCP servers, before the first UDP one
    assert len({port for _, port in seen}) == 2


def test_port_zero_takes_another_port_when_the_udp_one_is_taken_on_tcp(monkeypatch) -> None:
    # The kernel picks the UDP port; the same number may be another socket's on TCP (this
    # failed a full-suite run with "address already in use"): take the next one instead.
    cfg = config.parse(
        "upstreams: ['127.0.0.1:9']\nlists: {enabled: false}\nlisten: ['127.0.0.1:0']\n", "a.yaml"
    )
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    clashing = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    clashing.bind(("127.0.0.1", taken))
    clashing.setblocking(False)
    made = [clashing]
    original = app_module._udp_socket

    def udp_socket(*args):  # type: ignore[no-untyped-def]
        return made.pop() if made else original(*args)

    monkeypatch.setattr(app_module, "_udp_socket", udp_socket)

    async def main() -> tuple[int, bool]:
        server = Server(cfg, build_resolver(cfg, build_state(cfg), Stats()))
        try:
            await server.start()
            (tcp,) = server.tcp_servers
            port = tcp.sockets[0].getsockname()[1]
            return port, server.udp[0]._listener[1] == port
        finally:
            await server.stop(grace=0)

    try:
        port, same = asyncio.run(main())
    finally:
        held.close()
    assert port != taken and same
    assert clashing.fileno() == -1  # the clashing UDP socket was closed, not leaked
