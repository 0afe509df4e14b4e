"""Server.start in resolver/app.py: the order in which listeners open."""

from __future__ import annotations

import asyncio
import socket

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
