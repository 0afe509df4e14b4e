"""Where lachan's latency tail comes from: a short paced dnsperf run with the causes timed.

Starts NSD (the wildcard upstream of ``make bench``) and ``lachan serve`` in a child process of
this script that times, from inside the server, every garbage collection (``gc.callbacks``),
every stall of the event loop (a 5 ms ticker that notes how late it runs), the timeout sweep,
cache insertions (evictions included) and the memo's clears; then paced dnsperf runs (misses
on unique names with a cache small enough to churn, then hits) and a table: dnsperf's p99,
p99.9 and max beside the longest pause of each cause, so which cause was which is read off::

    .venv/bin/python benchmarks/tail_probe.py                    # ~40 s
    .venv/bin/python benchmarks/tail_probe.py --checkout ../main  # the same against main

Everything on 127.0.0.1; NSD, the server and dnsperf are stopped by the PIDs started here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# --checkout: the server runs another checkout's resolver (e.g. main's, for a before/after)
sys.path.insert(0, os.environ.get("TAIL_PROBE_CHECKOUT") or str(HERE.parent))

STALL_TICK = 0.005
STALL_NOTE = 0.002  # lateness beyond the tick worth recording
SETTLE = 6.0  # seconds after start before anything is recorded (startup is not the tail)
# Causes are timed in CPU time of the serving thread (time.thread_time): on a shared machine
# wall time would also count the moments the kernel gave the CPU to someone else; the loop
# stalls are wall time, so stalls no cause explains are the host's.


# -- inside the server ---------------------------------------------------------------------
def _timed(
    owner: object, name: str, pauses: dict[str, list[float]], cause: str, armed: list[bool]
) -> None:
    """Wrap ``owner.name`` so that calls longer than 1 ms are recorded under ``cause``."""
    original = getattr(owner, name)
    record = pauses.setdefault(cause, [])

    def wrapper(*args: object, **kw: object) -> object:
        began = time.thread_time()
        try:
            return original(*args, **kw)
        finally:
            spent = time.thread_time() - began
            if spent > 0.001 and armed[0]:
                record.append(spent)

    setattr(owner, name, wrapper)


def serve(config_path: str, out_path: str) -> None:
    """``lachan serve`` with the causes instrumented; writes what it saw at SIGTERM."""
    from resolver import config as config_module
    from resolver.cache import Cache
    from resolver.compose import serve as app_serve
    from resolver.forward import Dispatcher
    from resolver.pipeline import Resolver

    pauses: dict[str, list[float]] = {
        "gc0": [], "gc1": [], "gc2": [], "stall_own": [], "stall_host": [],
    }  # fmt: skip
    started: list[float] = [0.0]
    armed = [False]
    found = [0, 0, 0]  # unreachable objects each generation's collections freed (cycles)

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        elif armed[0]:
            pauses[f"gc{info['generation']}"].append(time.thread_time() - started[0])
            found[info["generation"]] += info["collected"]

    gc.callbacks.append(on_gc)
    _timed(Dispatcher, "_sweep", pauses, "sweep", armed)
    _timed(Cache, "put", pauses, "cache_put", armed)
    _timed(Resolver, "_remember", pauses, "memo", armed)
    cfg = config_module.load(config_path)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        due = [loop.time() + STALL_TICK]
        cpu = [time.thread_time()]

        def tick() -> None:
            # A late tick is our own work when the thread was on the CPU for most of the
            # interval (a long callback, a collection), the host's when it was not.
            late = loop.time() - due[0]
            used = time.thread_time() - cpu[0]
            if late > STALL_NOTE and armed[0]:
                own = used > (late + STALL_TICK) / 2
                pauses["stall_own" if own else "stall_host"].append(late)
            due[0] = loop.time() + STALL_TICK
            cpu[0] = time.thread_time()
            loop.call_later(STALL_TICK, tick)

        loop.call_later(STALL_TICK, tick)
        loop.call_later(SETTLE, lambda: armed.__setitem__(0, True))
        await app_serve(cfg, lambda: config_module.load(config_path))

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    Path(out_path).write_text(json.dumps({**pauses, "cycles_freed": found}))


# -- the orchestration ---------------------------------------------------------------------
def _summary(values: list[float]) -> str:
    if not values:
        return "0 |  |  "
    ordered = sorted(values)
    return f"{len(values)} | {ordered[len(ordered) // 2] * 1e3:.1f} | {ordered[-1] * 1e3:.1f}"


def main() -> None:
    from dnsperf import Load, run
    from peers import nsd_argv
    from procs import Proc, port_free

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--miss-qps", type=int, default=2000)
    parser.add_argument("--hit-qps", type=int, default=10000)
    parser.add_argument("--cache-size", type=int, default=20_000)
    parser.add_argument("--checkout", help="serve from this checkout's resolver/ (read only)")
    args = parser.parse_args()
    if args.checkout:
        os.environ["TAIL_PROBE_CHECKOUT"] = str(Path(args.checkout).resolve())
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the other checkout untouched
    work = Path(tempfile.mkdtemp(prefix="tail-probe-"))
    ports = [p for p in range(5390, 5399) if port_free("127.0.0.1", p)]
    upstream_port, port = ports[0], ports[1]
    nsd = Proc("nsd", nsd_argv(work / "nsd", upstream_port), work / "nsd.log", cpus="0")
    config = work / "lachan.yaml"
    config.write_text(
        f'listen: ["127.0.0.1:{port}"]\nupstreams: ["127.0.0.1:{upstream_port}"]\n'
        f"lists: {{enabled: false}}\ncache: {{size: {args.cache_size}}}\n"
    )
    rnd = random.Random(13)
    misses = work / "miss.txt"
    count = args.miss_qps * args.seconds + 1000
    misses.write_text("".join(f"m{rnd.getrandbits(48):x}.tail.test A\n" for _ in range(count)))
    hits = work / "hit.txt"
    hits.write_text("".join(f"h{i}.tail.test A\n" for i in range(1000)))
    env_argv = [sys.executable, __file__, "--serve", str(config), str(work / "pauses.json")]
    server = Proc("lachan", env_argv, work / "lachan.log", cpus="1")
    time.sleep(SETTLE + 0.5)
    results = {}
    try:
        warm = Load(latency=False)
        run("127.0.0.1", port, hits, 30, warm, work, cpus="0", passes=1)  # hits are cached
        paced = {"miss": (misses, args.miss_qps), "hit": (hits, args.hit_qps)}
        for name, (datafile, qps) in paced.items():
            results[name] = run(
                "127.0.0.1", port, datafile, args.seconds, Load(max_qps=qps), work, cpus="0"
            )
    finally:
        if server.popen.poll() is None:
            server.popen.send_signal(signal.SIGTERM)  # our child, by PID: it writes its pauses
            server.popen.wait(timeout=20)
        nsd.stop()
    pauses = json.loads((work / "pauses.json").read_text())
    print(
        f"| case | QPS | p99 ms | p99.9 ms | max ms |  (resolver from {args.checkout or HERE.parent})"
    )
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r.get('qps', 0):.0f} | {r.get('p99_s', 0) * 1e3:.2f} | "
              f"{r.get('p999_s', 0) * 1e3:.2f} | {r.get('max_s', 0) * 1e3:.1f} |")  # fmt: skip
    print("\n| cause (whole run) | events > 1 ms (stalls > 2 ms) | median ms | max ms |")
    print("|---|---|---|---|")
    freed = pauses.pop("cycles_freed")
    for cause, values in pauses.items():
        shown = values if cause.startswith("stall") else [v for v in values if v > 0.001]
        print(f"| {cause} | {_summary(shown)} |")
    print("(causes in CPU ms of the serving thread; stalls in wall ms that the 5 ms ticker "
          "ran late: own = the thread was on the CPU, host = it was not)")  # fmt: skip
    print(f"objects in garbage cycles freed by gen 0/1/2 collections: {freed}")
    print(f"\nwork folder: {work}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        main()
