"""One peer in one round: start it (empty list, then the real list), probe it, load it."""

from __future__ import annotations

import resource
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import dnsperf
import probe
from data import Inputs
from lachan_peer import LachanCaps
from peers import Peer, peer_argv
from procs import Proc, cpu_seconds, cpu_split, log, machine_busy_seconds, port_free, rss_kib


@dataclass
class Bench:
    """Everything a case needs that does not change during the run."""

    inputs: Inputs
    rundir: Path
    workloads: list[str]
    duration: float
    load: dnsperf.Load
    loadgen_cpus: str | None
    upstream_port: int
    lachan_cmd: str | None = None
    caps: LachanCaps = LachanCaps()
    # Fixed rates for the *-paced cases, below every fast peer's saturation, so their p99 is
    # service latency rather than the queueing of 1,000 outstanding queries.
    paced: dict[str, int] = field(default_factory=lambda: {"hit": 20_000, "miss": 5_000})
    startup_timeout: float = 120.0
    started: list[Proc] = field(default_factory=list)  # for the signal handler
    upstream: Proc | None = None

    def spawn(self, peer: Peer, prefix: str, tag: str) -> Proc:
        d = self.rundir / peer.name
        argv = peer_argv(
            peer, d, self.inputs.folder, prefix, self.upstream_port, self.lachan_cmd, self.caps
        )
        proc = Proc(peer.name, argv, d / f"{tag}.log", peer.cpus)
        self.started.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.started:
            self.started.remove(proc)

    def workload_file(self, wl: str, rnd: int) -> Path:
        if wl.startswith("miss"):
            return self.inputs.path(f"wl-{wl}-r{rnd}.txt")
        return self.inputs.path(f"wl-{wl.removesuffix('-paced')}.txt")


def start_ready(b: Bench, peer: Peer, prefix: str, tag: str, probe_name: str | None):
    """Spawn and wait until serving (and blocking probe_name): (proc, seconds) or (proc, None)."""
    if peer.kind == "lachan" and not b.caps.lists:
        probe_name = None  # started without the list (see the report's notes): nothing to wait for
    proc = b.spawn(peer, prefix, tag)
    ready = probe.wait_ready(
        peer.host, peer.port, proc.t0, proc.alive, probe_name, b.startup_timeout
    )
    return proc, ready


def measure(b: Bench, peer: Peer, proc: Proc, wl: str, rnd: int, rate: int = 0) -> dict:
    """One timed dnsperf case with the peer's and the generator's CPU accounted."""
    datafile, load, seconds = b.workload_file(wl, rnd), b.load, b.duration
    if wl.endswith("-paced"):
        load = replace(load, max_qps=rate or b.paced[wl.removesuffix("-paced")])
        seconds = min(seconds, 5.0)
    if wl.startswith("hit"):  # one unmeasured pass so all 1,000 names are cached
        dnsperf.run(peer.host, peer.port, datafile, 20, load, b.rundir, b.loadgen_cpus, passes=1)
    pids, up = proc.tree(), b.upstream.tree() if b.upstream else []
    split0, u0, m0 = cpu_split(pids), cpu_seconds(up), machine_busy_seconds()
    r0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    res = dnsperf.run(peer.host, peer.port, datafile, seconds, load, b.rundir, b.loadgen_cpus)
    wall = time.monotonic() - w0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    split1 = cpu_split(pids)  # pids taken before: workers exist from the start
    peer_cpu = sum(split1) - sum(split0)
    gen_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    up_cpu, busy = cpu_seconds(up) - u0, machine_busy_seconds() - m0
    res.update(peer=peer.name, workload=wl, round=rnd, workers=peer.workers, paced_qps=load.max_qps)
    res["cpus"] = peer.cpus or "any"
    for key, secs in (("peer", peer_cpu), ("dnsperf", gen_cpu), ("upstream", up_cpu)):
        res[f"{key}_cpu_pct"] = round(100 * secs / wall, 1)
    # Whatever else kept the CPUs busy: other jobs on a shared machine, this script, the kernel.
    others = max(0.0, busy - peer_cpu - gen_cpu - up_cpu)
    res["others_cpu_pct"] = round(100 * others / wall, 1)
    if peer_cpu > 0 and res.get("qps"):
        res["qps_per_peer_cpu_s"] = round(res["qps"] * wall / peer_cpu)
    res.update(per_query_cpu(split0, split1, res.get("completed")))
    log(
        f"  {peer.name} r{rnd} {wl:8s} qps={res.get('qps', 0):>9,.0f} "
        f"p99={1000 * res.get('p99_s', 0):.2f}ms lost={res.get('lost')} "
        f"CPU% peer={res['peer_cpu_pct']} dnsperf={res['dnsperf_cpu_pct']} "
        f"others={res['others_cpu_pct']} rcodes={res.get('rcodes')}"
    )
    return res


def per_query_cpu(
    before: tuple[float, float], after: tuple[float, float], answered: int | None
) -> dict[str, float]:
    """The peer's CPU per answered query, split into its own code (user) and the kernel's
    work for it (system): µs, from clock ticks, so meaningful over a run of seconds."""
    if not answered:
        return {}
    user, system = (1e6 * (a - b) / answered for a, b in zip(after, before, strict=True))
    return {"peer_user_us": round(user, 2), "peer_kernel_us": round(system, 2)}


def _empty_start(b: Bench, peer: Peer, rec: dict) -> None:
    proc, ready = start_ready(b, peer, "empty", "empty", None)
    time.sleep(1.0)
    rec["ready_empty_s"] = None if ready is None else round(ready, 3)
    rec["rss_empty_kib"] = rss_kib(proc.tree()) if ready is not None else None
    if ready is None:
        rec["empty_error"] = (
            f"not ready with an empty list (exit={proc.popen.poll()}): {proc.log_tail()}"
        )
    b.stop(proc)


def _first_start(b: Bench, peer: Peer, rec: dict, probe_name: str) -> None:
    """lachan compiles its index on first use; time that once, then measure warm starts."""
    shutil.rmtree(b.rundir / peer.name / "state", ignore_errors=True)
    proc, ready = start_ready(b, peer, "blocklist", "first", probe_name)
    rec["ready_first_s"] = None if ready is None else round(ready, 3)
    b.stop(proc)


def _describe_loaded(b: Bench, peer: Peer, proc: Proc, listed: list[str], rec: dict) -> None:
    """RSS 1 s after ready, what the peer blocks, and lachan's index file size."""
    time.sleep(1.0)
    rec["rss_kib"] = rss_kib(proc.tree())
    rec["semantics"] = probe.semantics(peer.host, peer.port, listed)
    if peer.kind == "lachan":  # the compiled index lachan maps (shared by its workers)
        sizes = [f.stat().st_size for f in (b.rundir / peer.name / "state").rglob("*.lidx")]
        rec["index_file_kib"] = max(sizes) // 1024 if sizes else None
    log(f"  {peer.name}: ready in {rec['ready_s']:.3f}s, RSS {rec['rss_kib'] / 1024:.1f} MiB, "
        f"{rec['semantics']}")  # fmt: skip


def _workloads(b: Bench, peer: Peer, proc: Proc, rnd: int) -> list[dict]:
    rows = []
    paced = [f"{wl}-paced" for wl in ("hit", "miss") if wl in b.workloads and wl in b.paced]
    for wl in b.workloads + paced:
        if proc.alive():
            rows.append(measure(b, peer, proc, wl, rnd))
        else:
            rows.append({"peer": peer.name, "workload": wl, "round": rnd, "error": "peer exited"})
    return rows


def bench_peer(b: Bench, peer: Peer, rnd: int) -> tuple[dict, list[dict]]:
    """Startup, memory and semantics of one peer, then every workload; stops it after."""
    rec: dict = {"peer": peer.name, "round": rnd, "workers": peer.workers,
                 "cpus": peer.cpus or "any", "list_loaded": peer.kind != "lachan" or b.caps.lists}  # fmt: skip
    if not port_free(peer.host, peer.port):
        rec["error"] = f"port {peer.port} is taken by a process this harness did not start"
        return rec, []
    listed = b.inputs.listed()
    if rnd == 1:
        _empty_start(b, peer, rec)
        if peer.kind == "lachan" and b.caps.lists:
            _first_start(b, peer, rec, listed[-1])
    proc, ready = start_ready(b, peer, "blocklist", f"r{rnd}", listed[-1])
    if ready is None:
        rec["error"] = (
            f"not ready in {b.startup_timeout:.0f}s (exit={proc.popen.poll()}): {proc.log_tail()}"
        )
        b.stop(proc)
        log(f"  {peer.name}: {rec['error']}")
        return rec, []
    rec["ready_s"] = round(ready, 3)
    try:
        _describe_loaded(b, peer, proc, listed, rec)
        rows = _workloads(b, peer, proc, rnd)
    finally:
        rec["rss_end_kib"] = rss_kib(proc.tree())
        b.stop(proc)
    return rec, rows


# Per-worker rate of the scaling case's paced runs: well below one worker's saturation, and
# twice it is still well within what dnsperf sends from the one core it shares.
SCALING_RATE_PER_WORKER = 40_000


def scaling(b: Bench, peer: Peer, counts: tuple[int, ...], rounds: int = 1) -> list[dict]:
    """lachan with 1..N workers, unpinned, on the cache-hit workload; even rounds reversed.

    Each worker count runs saturated ("hit") and paced at N x SCALING_RATE_PER_WORKER
    ("hit-paced"): the same load per worker, so CPU per query can be compared (see
    report._scaling_check for why raw QPS cannot show scaling on two shared cores).
    """
    rows = []
    for rnd in range(1, rounds + 1):
        for n in counts if rnd % 2 else tuple(reversed(counts)):
            p = Peer(peer.name, peer.kind, peer.port, workers=n, cpus=None)
            proc, ready = start_ready(b, p, "blocklist", f"workers{n}", b.inputs.listed()[-1])
            if ready is None:
                rows.append({"peer": p.name, "workers": n, "workload": "hit", "round": rnd,
                             "error": proc.log_tail()})  # fmt: skip
            else:
                rows.append(measure(b, p, proc, "hit", rnd))
                rows.append(measure(b, p, proc, "hit-paced", rnd, n * SCALING_RATE_PER_WORKER))
            b.stop(proc)
    return rows
