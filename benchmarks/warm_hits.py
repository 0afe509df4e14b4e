"""The CPU cost of a cache hit with a large working set, in one process without dnsperf.

    .venv/bin/python benchmarks/warm_hits.py --config benchmarks/work/run/lachan/lachan.yaml
    .venv/bin/python benchmarks/warm_hits.py --checkout ../main ...   # the same, other code

Needs the bench's data and an upstream that knows the names (``benchmarks/run.py --peers
lachan --workloads mixed`` once writes ``wl-mixed.txt`` and the config; keep its NSD running,
or point the config at another). Each name of the first ``--queries`` lines of the workload
is resolved once (real misses), then those lines are fed to a real ``UdpListener`` (with a
transport that only counts) ``--rounds`` times, on an injected clock that moves
1/``--qps`` s per packet, so that prepared answers run out as they do at that rate.

Per round: this thread's CPU time per packet, and how packets were answered: by the memo
(still valid), renewed (``PreparedAnswers.renew``), by the fast path's prepared blocks, or
by the pipeline (``Resolver.answer``). The kernel's share (two syscalls per packet, about
4.5 us on the 2-core bench machine) is not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Sink:
    """A datagram transport that counts what lachan sends and keeps nothing."""

    def __init__(self) -> None:
        self.sent = 0

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.sent += 1

    def is_closing(self) -> bool:
        return False


def packets(path: Path, count: int) -> list[bytes]:
    import dns.message

    made: dict[str, bytes] = {}
    rng = random.Random(1)
    out = []
    for line in path.read_text().splitlines()[:count]:
        if not line.strip():
            continue
        wire = made.get(line)
        if wire is None:
            name, qtype = line.split()
            wire = made[line] = dns.message.make_query(name, qtype).to_wire()
        out.append(rng.getrandbits(16).to_bytes(2, "big") + wire[2:])
    return out


async def measure(args: argparse.Namespace) -> None:
    from resolver import config
    from resolver.app import build_resolver
    from resolver.state import build_state
    from resolver.stats import Stats
    from resolver.transport.udp import UdpListener

    now = [1000.0]
    cfg = config.parse(Path(args.config).read_text(), args.config)
    resolver = build_resolver(cfg, build_state(cfg), Stats(), clock=lambda: now[0])
    listener, sink = UdpListener(resolver, ("127.0.0.1", 53)), Sink()
    listener.connection_made(sink)  # type: ignore[arg-type]
    client = ("127.0.0.1", 40000)
    feed = packets(Path(args.workload), args.queries)
    unique = list({p[2:]: p for p in feed}.values())
    for start in range(0, len(unique), 200):  # each name once, paced for the upstream
        for data in unique[start : start + 200]:
            listener.datagram_received(data, client)
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    counts = {"pipeline": 0, "renewed": 0, "fast": 0}
    answer, renew = resolver.answer, getattr(resolver, "renew", None)
    block = resolver.prepared_block

    def counted(name: str, call):  # type: ignore[no-untyped-def]
        def wrapper(*a):  # type: ignore[no-untyped-def]
            result = call(*a)
            counts[name] += result is not None
            return result

        return wrapper

    resolver.answer = counted("pipeline", answer)  # type: ignore[method-assign]
    resolver.prepared_block = counted("fast", block)  # type: ignore[method-assign]
    if renew is not None:  # a checkout before renewal has none
        resolver.renew = counted("renewed", renew)  # type: ignore[method-assign]
    print(f"{len(feed)} packets, {len(unique)} names, {len(resolver.cache)} cached")
    step = 1.0 / args.qps
    for number in range(args.rounds):
        counts.update(dict.fromkeys(counts, 0))
        sink.sent = 0
        started = time.thread_time()
        for data in feed:
            now[0] += step
            listener.datagram_received(data, client)
        spent = time.thread_time() - started
        shares = ", ".join(f"{k} {100 * v / len(feed):.1f}%" for k, v in counts.items())
        memo = len(feed) - sum(counts.values())
        print(f"round {number + 1}: {1e6 * spent / len(feed):.2f} us/packet; memo "
              f"{100 * memo / len(feed):.1f}%, {shares}; sent {sink.sent}")  # fmt: skip
        await asyncio.sleep(0.2)
    resolver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(HERE / "work/run/lachan/lachan.yaml"))
    parser.add_argument("--workload", default=str(HERE / "work/data/wl-mixed.txt"))
    parser.add_argument("--queries", type=int, default=700_000)
    parser.add_argument("--qps", type=float, default=90_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--checkout", default=str(HERE.parent), help="the lachan code to load")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.checkout).resolve()))
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
