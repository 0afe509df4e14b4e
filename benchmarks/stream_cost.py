"""Per-query cost of a blocked name and of a cache hit over UDP and over TCP, in one process.

The real pipeline (bundled lists, the shipped under16 profile) behind a real UdpListener and a
real TcpConnection, each on a recording transport: no sockets, so what is timed (CPU time) is
lachan's side of one query, from the bytes arriving to the answer handed to the transport. TCP
queries come pipelined, ``--batch`` per segment, as dnsperf and dnsdist send them::

    .venv/bin/python benchmarks/stream_cost.py --queries 50000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import dns.message
import dns.rrset

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import Resolver
from resolver.querystate import parse_reply
from resolver.state import build_state
from resolver.stats import Stats
from resolver.transport.tcp import TcpConnection, TcpPolicy, TcpServerState, tcp_limiter
from resolver.transport.udp import UdpListener

POLICIES = Path(__file__).resolve().parents[1] / "policies"
CLIENT = ("127.0.0.1", 40000)
LISTENER = ("127.0.0.1", 53)
NAMES = {"blocked": "pornhub.com", "hit": "www.example.test"}


class Recorder:
    """A transport that keeps nothing: the answers are counted, not stored."""

    def __init__(self) -> None:
        self.answers = 0

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.answers += 1

    def write(self, data: bytes) -> None:
        self.answers += 1

    def get_extra_info(self, name: str) -> object:
        return CLIENT if name == "peername" else LISTENER

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _resolver() -> Resolver:
    text = (
        "upstreams: ['127.0.0.1:9']\n"
        f"policies: {{dir: '{POLICIES}'}}\nclients: {{default: under16}}\n"
    )
    cfg = config.parse(text, "bench.yaml")
    resolver = build_resolver(cfg, build_state(cfg), Stats())
    query = dns.message.make_query(NAMES["hit"], "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(NAMES["hit"] + ".", 300, "IN", "A", "192.0.2.1"))
    key = query.to_wire()[12:-4].lower() + b"\x00\x01\x00\x01\x00"
    resolver.cache.put(key, parse_reply(reply.to_wire()))
    return resolver


def _packet(name: str, qid: int) -> bytes:
    return dns.message.make_query(name, "A", id=qid).to_wire()


async def _udp(resolver: Resolver, name: str, queries: int) -> float:
    listener, transport = UdpListener(resolver, LISTENER), Recorder()
    listener.connection_made(transport)  # type: ignore[arg-type]
    packets = [_packet(name, i & 0xFFFF) for i in range(256)]
    listener.datagram_received(packets[0], CLIENT)  # the first builds the prepared answer
    began = time.process_time()
    for i in range(queries):
        listener.datagram_received(packets[i & 255], CLIENT)
    spent = time.process_time() - began
    assert transport.answers == queries + 1, transport.answers
    return spent / queries


async def _tcp(resolver: Resolver, name: str, queries: int, batch: int) -> float:
    state = TcpServerState(TcpPolicy(), tcp_limiter(None), resolver.stats)
    connection, transport = TcpConnection(resolver, state, LISTENER), Recorder()
    connection.connection_made(transport)  # type: ignore[arg-type]
    framed = [len(p).to_bytes(2, "big") + p for p in (_packet(name, i) for i in range(batch))]
    segment = b"".join(framed)
    connection.data_received(segment)
    began = time.process_time()
    for _ in range(queries // batch):
        connection.data_received(segment)
    spent = time.process_time() - began
    connection.connection_lost(None)
    assert transport.answers == (queries // batch + 1) * batch, transport.answers
    return spent / (queries // batch * batch)


async def _run(queries: int, batch: int, rounds: int) -> None:
    resolver = _resolver()
    for kind, name in NAMES.items():
        for transport in ("udp", "tcp"):
            costs = []
            for _ in range(rounds):
                if transport == "udp":
                    costs.append(await _udp(resolver, name, queries))
                else:
                    costs.append(await _tcp(resolver, name, queries, batch))
            print(f"{kind:8} {transport}: best {min(costs) * 1e6:.2f} µs/query, rounds "
                  + ", ".join(f"{c * 1e6:.2f}" for c in costs))  # fmt: skip
    resolver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_run(args.queries, args.batch, args.rounds))


if __name__ == "__main__":
    main()
