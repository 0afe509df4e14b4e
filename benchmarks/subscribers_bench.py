"""ISP subscriber mode at scale: replica memory, initial load, cache-hit QPS with and without.

    .venv/bin/python benchmarks/subscribers_bench.py [--subscribers N] [--seconds S] [--json FILE]

Starts its own redis-server (loopback, temporary folder, stopped by PID) and fills it with N
subscribers and N IPv4 bindings; measures (1) the replica's memory per subscriber and per
binding with tracemalloc, (2) the initial load a starting lachan process does (HGETALL of
both hashes, decoding, building the replica), (3) accounting: Accounting-Start packets
paced at ``--acct-rate`` to a real ``lachan serve`` with RADIUS on, counting the answers, and
the time from each binding's ``since`` (set when lachan received it) to its arrival in a second
replica; (4) in process, the time a cache hit from a known client takes with and without subscriber
mode, and the time choosing a new client's profile takes (``subscribers_hitpath.py``);
(5) cache-hit QPS with dnsperf against two ``lachan serve`` side by side, one without a
``subscribers:`` section and one holding all N (the querying address bound to a subscriber),
pinned CPUs, rounds alternated A B B A so machine noise hits both alike, reported as the
median and range of the per-round ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import dnsperf, subscribers_hitpath  # noqa: E402
from benchmarks.procs import cpu_seconds, log  # noqa: E402
from resolver.policy.clients import address_key  # noqa: E402
from resolver.subscribers.follow import Follower  # noqa: E402
from resolver.subscribers.redis_store import (  # noqa: E402
    BINDINGS,
    PROFILES,
    VERSION,
    RedisStore,
    _encode,
)
from resolver.subscribers.replica import Affected, Binding, Replica  # noqa: E402
from tests.stub_upstream import LachanProcess, StubUpstream, free_port  # noqa: E402
from tests.subscribers.radius_packets import accounting as accounting_packet  # noqa: E402
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
    for label, key in (("subscriber", PROFILES), ("binding", BINDINGS), ("pair", "")):
        gc.collect()
        tracemalloc.start()
        profiles, bindings = store.load()
        if key == PROFILES:
            bindings = {}
        elif key == BINDINGS:
            profiles = {}
        count = len(profiles) + len(bindings)
        replica = Replica(details=False)  # as every serving process keeps it
        replica.replace(profiles, bindings)
        del profiles, bindings
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        pairs = count // 2 if label == "pair" else count
        out[f"bytes_per_{label}"] = held / max(1, pairs)
        del replica
    return out


def load_time(store: RedisStore) -> dict[str, float]:
    """Wall time of a start's load, and this process's CPU time in it (the part other jobs on
    a shared host inflate least; redis-server's own work is in the wall time only)."""
    started, cpu = time.perf_counter(), time.process_time()
    profiles, bindings = store.load()
    fetched = time.perf_counter()
    replica = Replica(details=False)
    replica.replace(profiles, bindings)
    done = time.perf_counter()
    return {
        "fetch_s": fetched - started, "build_s": done - fetched, "load_s": done - started,
        "load_cpu_s": time.process_time() - cpu, "loadavg_1m": os.getloadavg()[0],
    }  # fmt: skip


def qps(work: Path, redis_url: str, args: argparse.Namespace) -> dict[str, object]:
    """Cache-hit QPS of two ``lachan serve`` running side by side, one without subscribers and
    one with all N loaded, both pinned to ``--server-cpus`` and driven in turn by dnsperf on
    ``--loadgen-cpus``: rounds A B B A A B …, so that whatever else the host does falls on
    both alike; the ratio is taken per round (the two ran back to back), then its median.
    lachan's own CPU time per answer is read from /proc for each round as well."""
    names = work / "names.txt"
    names.write_text("".join(f"n{i}.example.test A\n" for i in range(200)), encoding="utf-8")
    configs = {  # the same profile for the querying address in both
        "without": "lists: {enabled: false}\nclients: {default: isp-default}\n",
        "with": f"lists: {{enabled: false}}\nsubscribers: {{store: '{redis_url}'}}\n",
    }
    results: dict[str, list[float]] = {k: [] for k in configs}
    cpu: dict[str, list[float]] = {k: [] for k in configs}  # lachan's CPU s per answer
    processes: dict[str, LachanProcess] = {}
    with StubUpstream() as stub:
        try:
            for kind, config in configs.items():
                (work / kind).mkdir(exist_ok=True)
                process = LachanProcess(work / kind, [stub.address], config, ipv6=False)
                if args.server_cpus:
                    process.args = ["taskset", "-c", args.server_cpus, *process.args]
                processes[kind] = process.start(timeout=120)
                dnsperf.run("127.0.0.1", process.port, names, 2, dnsperf.Load(), work,
                            args.loadgen_cpus, passes=2)  # fmt: skip
            kinds = list(configs)
            for index in range(args.rounds):
                for kind in kinds if index % 2 == 0 else kinds[::-1]:
                    pid = processes[kind].process.pid  # type: ignore[union-attr]
                    before = cpu_seconds([pid])
                    result = dnsperf.run("127.0.0.1", processes[kind].port, names, args.seconds,
                                         dnsperf.Load(latency=False), work, args.loadgen_cpus)  # fmt: skip
                    results[kind].append(float(result["qps"]))
                    cpu[kind].append((cpu_seconds([pid]) - before) / max(1, result["completed"]))
                    log(f"round {index + 1} {kind}: {result['qps']} QPS, "
                        f"{cpu[kind][-1] * 1e6:.2f} µs CPU per answer")  # fmt: skip
        finally:
            for process in processes.values():
                process.stop()
    return {
        "qps": results,
        "qps_median": {k: statistics.median(v) for k, v in results.items()},
        "qps_spread": {
            k: round((max(v) - min(v)) / statistics.median(v), 3) for k, v in results.items()
        },  # fmt: skip
        "qps_with_over_without": subscribers_hitpath.ratios(results),
        # CPU per answer is what bounds QPS on a saturated core, and other jobs on the host
        # change it far less than they change the QPS dnsperf sees.
        "cpu_us_per_answer_median": {
            k: round(statistics.median(v) * 1e6, 3) for k, v in cpu.items()
        },  # fmt: skip
        "cpu_per_answer_with_over_without": subscribers_hitpath.ratios(cpu),
    }


def accounting(work: Path, redis_url: str, rate: int, seconds: float) -> dict[str, float]:
    """``rate`` Accounting-Start packets a second to a real ``lachan serve`` (RADIUS on), and
    how long each binding took to reach a second replica (a Follower in this process)."""
    secret = work / "radius.secret"
    secret.write_text("bench-secret\n", encoding="utf-8")
    secret.chmod(0o600)
    port = free_port(("127.0.0.1",))
    config = (
        f"lists: {{enabled: false}}\nsubscribers: {{store: '{redis_url}', radius: "
        f"{{listen: '127.0.0.1:{port}', secret_file: '{secret}', nas: ['127.0.0.1/32']}}}}\n"
    )
    total = int(rate * seconds)
    packets = [
        accounting_packet("Start", secret=b"bench-secret", User_Name=f"acct-{i}",
                          Framed_IP_Address=f"10.{200 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}")
        for i in range(total)
    ]  # fmt: skip
    delays: list[float] = []
    loop = asyncio.new_event_loop()
    replica = Replica()  # with details: the propagation delay is measured from ``since``

    def seen(affected: Affected) -> None:
        now = time.time()
        for ip in affected.addresses:
            binding = replica.binding(*address_key(ip))
            if binding is not None and binding.subscriber.startswith("acct-"):
                delays.append(now - binding.since)

    threading.Thread(target=loop.run_forever, daemon=True).start()
    reader = RedisStore(redis_url)
    replica.replace(*reader.load())  # as a starting lachan process does
    replica.version = reader.loaded_version
    follower = Follower(reader, replica, loop, seen)
    with StubUpstream() as stub:
        folder = work / "acct"
        folder.mkdir(exist_ok=True)
        process = LachanProcess(folder, [stub.address], config, ipv6=False).start(timeout=120)
        try:
            follower.start()
            time.sleep(1)  # subscribed (the store has not moved: no reload)
            answered = _send_paced(packets, port, rate)
            time.sleep(2)
        finally:
            process.stop()
            follower.close()
    loop.call_soon_threadsafe(loop.stop)
    delays.sort()
    return {
        "acct_sent": total, "acct_answered": answered, "acct_propagated": len(delays),
        "acct_p50_s": delays[len(delays) // 2] if delays else -1.0,
        "acct_p99_s": delays[int(len(delays) * 0.99)] if delays else -1.0,
    }  # fmt: skip


def _send_paced(packets: list[bytes], port: int, rate: int) -> int:
    """Send at ``rate`` per second in 10 ms slices; count Accounting-Responses received."""
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setblocking(False)
        per_slice, started = max(1, rate // 100), time.monotonic()
        for index in range(0, len(packets), per_slice):
            for raw in packets[index : index + per_slice]:
                sock.sendto(raw, ("127.0.0.1", port))
            answered += _drain(sock)
            pause = started + (index + per_slice) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            answered += _drain(sock)
            time.sleep(0.05)
    return answered


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recv(4096)
        except BlockingIOError:
            return count
        count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per dnsperf round")
    parser.add_argument("--rounds", type=int, default=6, help="dnsperf rounds of each kind")
    parser.add_argument("--server-cpus", default="0", help="taskset -c for lachan ('' for any)")
    parser.add_argument("--loadgen-cpus", default="1", help="taskset -c for dnsperf")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-qps", action="store_true", help="skip the dnsperf rounds")
    parser.add_argument("--acct-rate", type=int, default=5000, help="accounting packets/s")
    parser.add_argument("--acct-seconds", type=float, default=5.0)
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
            report.update(accounting(work, redis.url, args.acct_rate, args.acct_seconds))
            log(json.dumps(report))
            if not args.no_qps:
                log("in-process: what subscriber mode adds per hit and per new client")
                report["hit_path"] = subscribers_hitpath.run(redis.url, args.rounds * 2)
                log(json.dumps(report["hit_path"]))
                report.update(qps(work, redis.url, args))
        finally:
            redis.kill()
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
