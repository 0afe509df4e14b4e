"""ISP subscriber mode at scale: replica memory, initial load, cache-hit QPS with and without.

    .venv/bin/python benchmarks/subscribers_bench.py [--subscribers N] [--seconds S] [--json FILE]

Starts its own redis-server (loopback, temporary folder, stopped by PID) and fills it with N
subscribers and N IPv4 bindings; measures (1) the replica's memory per subscriber and per
binding with tracemalloc, (2) the initial load a starting lachan process does (HGETALL of
both hashes, decoding, building the replica), (3) cache-hit QPS with dnsperf against
``lachan serve`` without a ``subscribers:`` section and with one holding all N (the querying
address bound to a subscriber), rounds alternated so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import dnsperf  # noqa: E402
from benchmarks.procs import log  # noqa: E402
from resolver.subscribers.redis_store import (  # noqa: E402
    BINDINGS,
    PROFILES,
    VERSION,
    RedisStore,
    _encode,
)
from resolver.subscribers.replica import Binding, Replica  # noqa: E402
from tests.stub_upstream import LachanProcess, StubUpstream  # noqa: E402
from tests.subscribers.redis_server import RedisServer  # noqa: E402


def address(i: int) -> str:
    return f"100.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def fill(store: RedisStore, n: int) -> None:
    """N subscribers (one in ten opted in to under16) and N bindings, in pipelined chunks."""
    client = store._client
    for start in range(0, n, 20_000):
        pipe = client.pipeline(transaction=False)
        ids = range(start, min(n, start + 20_000))
        profiles = {f"VN-{i:09d}": "under16" if i % 10 == 0 else "isp-default" for i in ids}
        pipe.hset(PROFILES, mapping=profiles)  # type: ignore[arg-type]
        bindings = {
            f"{address(i)}/32": _encode(Binding(f"VN-{i:09d}", 1.78e9 + i, "10.0.0.1")) for i in ids
        }
        pipe.hset(BINDINGS, mapping=bindings)  # type: ignore[arg-type]
        pipe.incr(VERSION)
        pipe.execute()


def memory(store: RedisStore) -> dict[str, float]:
    """Bytes the replica holds per subscriber and per binding, each loaded alone, traced
    from the store read on (so the ID strings the replica keeps are counted)."""
    out = {}
    for label, key in (("subscriber", PROFILES), ("binding", BINDINGS)):
        gc.collect()
        tracemalloc.start()
        profiles, bindings = store.load()
        if key == PROFILES:
            bindings = {}
        else:
            profiles = {}
        count = len(profiles) + len(bindings)
        replica = Replica()
        replica.replace(profiles, bindings)
        del profiles, bindings
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out[f"bytes_per_{label}"] = held / max(1, count)
        del replica
    return out


def load_time(store: RedisStore) -> dict[str, float]:
    started = time.perf_counter()
    profiles, bindings = store.load()
    fetched = time.perf_counter()
    replica = Replica()
    replica.replace(profiles, bindings)
    done = time.perf_counter()
    return {"fetch_s": fetched - started, "build_s": done - fetched, "load_s": done - started}


def qps(work: Path, redis_url: str, seconds: float, rounds: int) -> dict[str, list[float]]:
    names = work / "names.txt"
    names.write_text("".join(f"n{i}.example.test A\n" for i in range(200)), encoding="utf-8")
    configs = {
        "without": "lists: {enabled: false}\n",
        "with": f"lists: {{enabled: false}}\nsubscribers: {{store: '{redis_url}'}}\n",
    }
    results: dict[str, list[float]] = {k: [] for k in configs}
    with StubUpstream() as stub:
        for _ in range(rounds):
            for kind, config in configs.items():
                folder = work / kind
                folder.mkdir(exist_ok=True)
                process = LachanProcess(folder, [stub.address], config, ipv6=False)
                process.start(timeout=120)
                try:
                    dnsperf.run("127.0.0.1", process.port, names, 2, dnsperf.Load(), work,
                                passes=2)  # fmt: skip
                    load = dnsperf.Load(latency=False)
                    result = dnsperf.run("127.0.0.1", process.port, names, seconds, load, work)
                    results[kind].append(float(result["qps"]))
                    log(f"{kind}: {result['qps']} QPS")
                finally:
                    process.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-qps", action="store_true", help="memory and load time only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lachan-subs-bench-") as scratch:
        work = Path(scratch)
        (work / "redis").mkdir()
        redis = RedisServer(work / "redis").start()
        try:
            store = RedisStore(redis.url)
            log(f"filling redis with {args.subscribers} subscribers and bindings")
            fill(store, args.subscribers)
            store.set_profiles({"bench-client": "isp-default"})
            store.bind(["127.0.0.1"], Binding("bench-client", time.time(), "10.0.0.1"))
            report: dict[str, object] = {"subscribers": args.subscribers}
            report.update(load_time(store))
            report.update(memory(store))
            log(json.dumps(report))
            if not args.no_qps:
                rounds = qps(work, redis.url, args.seconds, args.rounds)
                report["qps"] = rounds
                report["qps_median"] = {k: statistics.median(v) for k, v in rounds.items()}
        finally:
            redis.kill()
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
