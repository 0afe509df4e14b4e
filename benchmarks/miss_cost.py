"""Per-miss cost of the upstream engine (forward.Dispatcher) in one process, on loopback.

A minimal upstream in the same event loop echoes each query back as an empty NOERROR answer,
so what is timed (in process CPU time, so that other load on the host matters less) is
lachan's side of a miss (socket, send, receive, checks, scan) plus that fixed echo. Run it before and after a change to the miss path and compare::

    .venv/bin/python benchmarks/miss_cost.py --misses 20000 --concurrency 100
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

from resolver.forward import Dispatcher, Exchange
from resolver.querystate import parse_reply
from resolver.upstream import ForwardPolicy, UpstreamAddress, build_upstream_query
from resolver.wire import text_to_wire


class Echo(asyncio.DatagramProtocol):
    """Answers every query with its own question, QR and RA set, no records."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = data[:2] + bytes([data[2] | 0x80, 0x80]) + b"\x00\x01\x00\x00\x00\x00\x00\x00"
        end = data.index(b"\x00", 12) + 5
        self.transport.sendto(reply + data[12:end], addr)  # type: ignore[attr-defined]


async def run(misses: int, concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    transport, _ = await loop.create_datagram_endpoint(Echo, sock=sock)
    address = UpstreamAddress("127.0.0.1", sock.getsockname()[1])
    done = asyncio.Event()
    state = {"started": 0, "finished": 0}

    def complete(exchange: Exchange, answer: object) -> None:
        assert answer is not None, "the echo upstream failed"
        state["finished"] += 1
        if state["started"] < misses:
            start_one()
        elif state["finished"] == misses:
            done.set()

    dispatcher = Dispatcher((address,), ForwardPolicy(), time.monotonic, parse_reply, complete)

    def start_one() -> None:
        n = state["started"]
        state["started"] += 1
        key = text_to_wire(f"n{n}.bench.test") + b"\x00\x01\x00\x01\x00"
        dispatcher.start(Exchange(key, build_upstream_query(key, 0, False, 1232)))

    began = time.process_time()  # CPU time: what a miss costs, whatever else the host runs
    for _ in range(min(concurrency, misses)):
        start_one()
    await done.wait()
    elapsed = time.process_time() - began
    dispatcher.close()
    transport.close()
    return elapsed / misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    costs = [asyncio.run(run(args.misses, args.concurrency)) for _ in range(args.rounds)]
    print(f"CPU per miss: best {min(costs) * 1e6:.1f} µs, rounds " +
          ", ".join(f"{c * 1e6:.1f}" for c in costs))  # fmt: skip


if __name__ == "__main__":
    main()
