"""Per-miss cost of the upstream engine (forward.Dispatcher) in one process, on loopback.

A minimal upstream in the same event loop echoes each query back as an empty NOERROR answer,
so what is timed (in process CPU time, so that other load on the host matters less) is
lachan's side of a miss (socket, send, receive, checks, scan) plus that fixed echo. It runs
on uvloop, as ``lachan serve`` does (``--loop asyncio`` for the stdlib loop, whose readers
cost more). Run it before and after a change to the miss path and compare::

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


class Echo:
    """Answers every query with its own question, QR and RA set, no records.

    A plain socket read 4 KiB at a time: asyncio's datagram transport reads into 256 KiB
    and shrinks the result, and whether glibc then maps and unmaps that buffer for every
    datagram depends on what the process freed before (its dynamic mmap threshold), which
    swung this benchmark by 15 µs per miss between two runs of the same code."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self.sock, self.loop = sock, loop
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except BlockingIOError:
                return
            reply = data[:2] + bytes([data[2] | 0x80, 0x80]) + b"\x00\x01\x00\x00\x00\x00\x00\x00"
            end = data.index(b"\x00", 12) + 5
            self.sock.sendto(reply + data[12:end], addr)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


async def run(misses: int, concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    echo = Echo(loop, sock)
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
    echo.close()
    return elapsed / misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the event loop (lachan serve runs on uvloop)")  # fmt: skip
    args = parser.parse_args()
    runner = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    costs = [runner(run(args.misses, args.concurrency)) for _ in range(args.rounds)]
    print(f"CPU per miss: best {min(costs) * 1e6:.1f} µs, rounds " +
          ", ".join(f"{c * 1e6:.1f}" for c in costs))  # fmt: skip


if __name__ == "__main__":
    main()
