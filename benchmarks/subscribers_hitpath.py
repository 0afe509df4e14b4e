"""What subscriber mode adds to the answer path, measured in one process without dnsperf.

    .venv/bin/python benchmarks/subscribers_hitpath.py --store redis://127.0.0.1:6379/0

Two resolvers are built in this process from the same config, one without a ``subscribers:``
section and one with it (its replica read from ``--store``: run this beside a filled store,
as ``subscribers_bench.py`` does). Both get the same profile for the querying address
(``isp-default``: its own subscriber's profile, or the client default). Then:

- **hit**: cache hits from a known client, fed to the real UDP listener
  (``UdpListener.datagram_received``) with a transport that only counts what is sent. Per-client
  state is cached, so a known client's hit runs no subscriber code: the two should be equal.
  Rounds alternate A/B/B/A so drift on a shared machine falls on both alike; time is this
  thread's CPU time (other jobs on the host count less); the figures are the median per-query
  time of each, and the median and range of the per-round ratio with/without.
- **new client**: choosing the state of an address seen for the first time
  (``Resolver.client``): with subscribers, one more dict lookup in the replica (and the
  subscriber's profile), paid once per address until a change or a reload drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402

from resolver import config  # noqa: E402
from resolver.app import build_resolver  # noqa: E402
from resolver.pipeline import Resolver  # noqa: E402
from resolver.state import build_state  # noqa: E402
from resolver.stats import Stats  # noqa: E402
from resolver.transport.udp import UdpListener  # noqa: E402
from tests.stub_upstream import StubUpstream  # noqa: E402

CLIENT = ("127.0.0.1", 40000)  # subscribers_bench.py binds 127.0.0.1 to an isp-default line
LISTENER = ("127.0.0.1", 53)


class Sink:
    """A datagram transport that counts what lachan sends and keeps nothing."""

    def __init__(self) -> None:
        self.sent = 0

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.sent += 1

    def is_closing(self) -> bool:
        return False


def configs(upstream: str, store: str) -> dict[str, str]:
    base = f"upstreams: ['{upstream}']\nlists: {{enabled: false}}\n"
    return {
        "without": base + "clients: {default: isp-default}\n",
        "with": base + f"subscribers: {{store: '{store}', default: isp-default}}\n",
    }


def listener_for(text: str) -> tuple[Resolver, UdpListener, Sink]:
    cfg = config.parse(text, "bench.yaml")
    resolver = build_resolver(cfg, build_state(cfg), Stats())
    listener, sink = UdpListener(resolver, LISTENER), Sink()
    listener.connection_made(sink)  # type: ignore[arg-type]
    return resolver, listener, sink


async def warm(listener: UdpListener, sink: Sink, packets: list[bytes]) -> None:
    """Each name once (a miss to the stub upstream), then wait until all are answered."""
    for packet in packets:
        listener.datagram_received(packet, CLIENT)
    deadline = time.monotonic() + 10
    while sink.sent < len(packets) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if sink.sent < len(packets):
        raise RuntimeError(f"warm-up: {sink.sent} of {len(packets)} answered")


def per_hit(listener: UdpListener, packets: list[bytes], queries: int) -> float:
    """Seconds per query for ``queries`` cache hits from the known client."""
    receive, passes = listener.datagram_received, max(1, queries // len(packets))
    started = time.thread_time()
    for _ in range(passes):
        for packet in packets:
            receive(packet, CLIENT)
    return (time.thread_time() - started) / (passes * len(packets))


def per_new_client(resolver: Resolver, addresses: list[str]) -> float:
    """Seconds per first query's client choice, each address new to the table."""
    table: dict = {}
    choose = resolver.client
    started = time.thread_time()
    for ip in addresses:
        choose(table, ip, LISTENER)
    return (time.thread_time() - started) / len(addresses)


def alternate(measure: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """A B B A A B …: each kind goes first in half the rounds."""
    out: dict[str, list[float]] = {kind: [] for kind in measure}
    kinds = list(measure)
    for index in range(rounds):
        for kind in kinds if index % 2 == 0 else kinds[::-1]:
            out[kind].append(measure[kind]())
    return out


def ratios(samples: dict[str, list[float]]) -> dict[str, object]:
    """with/without of each round (the two ran back to back): median and range."""
    each = sorted(w / o for w, o in zip(samples["with"], samples["without"], strict=True))
    return {
        "ratio_median": round(statistics.median(each), 4),
        "ratio_range": [round(each[0], 4), round(each[-1], 4)],
        "rounds": len(each),
    }


def summary(samples: dict[str, list[float]]) -> dict[str, object]:
    """Medians in ns, and the per-round ratios."""
    return {
        "without_ns": round(statistics.median(samples["without"]) * 1e9, 1),
        "with_ns": round(statistics.median(samples["with"]) * 1e9, 1),
        **ratios(samples),
    }


async def measure(store: str, rounds: int, queries: int, new_clients: list[str]) -> dict:
    with StubUpstream() as stub:
        built = {kind: listener_for(text) for kind, text in configs(stub.address, store).items()}
        packets = [dns.message.make_query(f"n{i}.example.test", "A").to_wire() for i in range(200)]
        for _resolver, listener, sink in built.values():
            await warm(listener, sink, packets)
        profiles = {
            k: r.client({}, CLIENT[0], LISTENER).profile.name for k, (r, _, _) in built.items()
        }
        gc.collect()
        hits = alternate({k: (lambda lst=lst: per_hit(lst, packets, queries))
                          for k, (_, lst, _) in built.items()}, rounds)  # fmt: skip
        choices = alternate({k: (lambda r=r: per_new_client(r, new_clients))
                             for k, (r, _, _) in built.items()}, rounds)  # fmt: skip
        for resolver, _, _ in built.values():
            resolver.close()
    return {"profiles": profiles, "hit": summary(hits), "new_client": summary(choices)}


def run(store: str, rounds: int = 10, queries: int = 200_000) -> dict:
    """The figures, for ``subscribers_bench.py`` (addresses bound there: 100.64.0.0 on)."""
    new_clients = [f"100.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}" for i in range(50_000)]
    return asyncio.run(measure(store, rounds, queries, new_clients))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="redis://… or file:… (filled)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200_000, help="hits per round")
    args = parser.parse_args()
    print(json.dumps(run(args.store, args.rounds, args.queries), indent=1))


if __name__ == "__main__":
    main()
