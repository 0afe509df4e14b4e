"""`make bench`: lachan beside unbound, dnsmasq, pdns-recursor and a naive dnslib forwarder.

One run starts an NSD wildcard upstream on 127.0.0.1, then, per round and per peer: starts the
peer with an empty list and with the shared blocklist (startup, RSS), checks what it blocks,
and loads it with dnsperf (cache-hit, blocked, mixed, cache-miss). Writes
benchmarks/results/<date>.json and .md, prints the table and PASS/FAIL per target.

    .venv/bin/python benchmarks/run.py              # full run (~14 min)
    .venv/bin/python benchmarks/run.py --quick      # smoke run (~2 min)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, not a package

import cases  # noqa: E402
import data  # noqa: E402
import dnsperf  # noqa: E402
import probe  # noqa: E402
import report  # noqa: E402
from lachan_peer import byte_compile, lachan_caps, lachan_package
from peers import PEERS, nsd_argv  # noqa: E402
from procs import Proc, log, port_free  # noqa: E402

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("BENCH_WORK") or HERE / "work")
SIZES = {"miss": 1_000_000, "miss_paced": 100_000, "blocked": 3_000_000, "mixed": 1_000_000}


OPTIONS: list[tuple[str, dict]] = [
    ("--quick", {"action": "store_true", "help": "smoke run: 1 round x 3 s, no workers case"}),
    ("--duration", {"type": float, "default": 15, "help": "seconds per dnsperf case (15)"}),
    ("--rounds", {"type": int, "default": 2, "help": "rounds; even ones run the peers in reverse (2)"}),
    ("--peers", {"default": ",".join(p.name for p in PEERS), "help": "comma list of peers"}),
    ("--workloads", {"default": ",".join(report.WORKLOADS), "help": "comma list of hit,blocked,mixed,miss"}),
    ("--workers", {"default": "1,2", "help": "lachan worker counts for the scaling case ('' = skip)"}),
    ("--lachan-cmd", {"help": "stand-in command for lachan, with {port} {upstream_port} {config} "
                      "{blocklist} {workers} {python} {bench}"}),
    ("--blocklist", {"type": Path, "help": "domains file (default: the shared or bundled adult list)"}),
    ("--synthetic", {"action": "store_true", "help": "use synthetic names even if a real list exists"}),
    ("--no-latency", {"dest": "latency", "action": "store_false", "help": "skip dnsperf -v (no percentiles)"}),
    ("--upstream-port", {"type": int, "default": 5300}),
    ("--peer-cpus", {"default": "1", "help": "CPU for single-process peers (1)"}),
    ("--loadgen-cpus", {"default": "0", "help": "CPU for dnsperf and NSD (0)"}),
    ("--report-only", {"type": Path, "metavar": "JSON", "help": "re-render the markdown from a results JSON"}),
    ("--out", {"type": Path, "help": "results path without suffix (default results/<date>)"}),
]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    fmt = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    for flag, kwargs in OPTIONS:
        ap.add_argument(flag, **kwargs)
    a = ap.parse_args(argv)
    if a.quick:
        a.duration, a.rounds, a.workers = 3, 1, ""
    if not (0 < a.duration <= 120 and 1 <= a.rounds <= 5):
        ap.error("keep runs bounded: 0 < --duration <= 120, 1 <= --rounds <= 5")
    unknown = set(a.peers.split(",")) - {p.name for p in PEERS}
    unknown |= set(a.workloads.split(",")) - set(report.WORKLOADS) - {""}
    if unknown:
        ap.error(f"unknown peer or workload: {', '.join(sorted(unknown))}")
    a.peers = [p for p in PEERS if p.name in a.peers.split(",")]
    a.workloads = [w for w in report.WORKLOADS if w in a.workloads.split(",")]
    a.workers = tuple(int(n) for n in a.workers.split(",") if n.strip())
    if (os.cpu_count() or 1) < 2:
        a.peer_cpus = a.loadgen_cpus = "0"
    return a


def usable(a: argparse.Namespace, notes: list[str]) -> list:
    """The selected peers that can run here; the others are noted, not fatal."""
    out = []
    for p in a.peers:
        if p.binary and not shutil.which(p.binary):
            notes.append(f"{p.name}: skipped, `{p.binary}` is not installed")
        else:
            out.append(replace(p, cpus=a.peer_cpus))
    return out


def caps_notes(caps) -> list[str]:
    """Say plainly when lachan could not be measured the way the targets assume."""
    notes = []
    if not caps.lists:
        notes.append(
            "**lachan ran WITHOUT the blocklist**: this checkout's config does not accept "
            f"`lists:` yet ({caps.problem}); its blocked/mixed figures are forwarding, not blocking."
        )
    if not caps.workers:
        notes.append(
            "lachan: `serve --workers` is not available yet; the workers scaling case was skipped."
        )
    return notes


def start_upstream(a: argparse.Namespace, b: cases.Bench) -> str:
    """NSD on the load-generator CPU; returns a line saying it answers as expected."""
    if not port_free("127.0.0.1", a.upstream_port):
        sys.exit(f"127.0.0.1:{a.upstream_port} is taken by something this harness did not start")
    d = b.rundir / "upstream-nsd"
    proc = Proc("nsd", nsd_argv(d, a.upstream_port), d / "nsd.out", a.loadgen_cpus)
    b.started.append(proc)
    b.upstream = proc
    if probe.wait_ready("127.0.0.1", a.upstream_port, proc.t0, proc.alive, None, 30) is None:
        sys.exit(f"NSD upstream did not start: {proc.log_tail()}")
    names = [f"check{i}.example.{tld}" for i, tld in enumerate(("com", "net", "org"))]
    good = sum(
        bool(
            (r4 := probe.query("127.0.0.1", a.upstream_port, n))
            and r4.addresses == (probe.UPSTREAM_A,)
        )
        and bool(
            (r6 := probe.query("127.0.0.1", a.upstream_port, n, "AAAA"))
            and r6.addresses == (probe.UPSTREAM_AAAA,)
        )
        for n in names
    )
    return f"{good}/{len(names)} probe names answered {probe.UPSTREAM_A} and {probe.UPSTREAM_AAAA}"


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    m = re.search(r"(?:[Vv]ersion|Recursor)\s+(\d[\w.~+-]*)", out.stdout + out.stderr)
    return m.group(1) if m else "?"


def setup_lines(
    a: argparse.Namespace, inputs: data.Inputs, upstream: str, notes: list[str]
) -> list[str]:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return [
        f"Machine: {os.cpu_count()} CPUs ({cpu.group(1) if cpu else '?'}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; a shared machine, so rounds are interleaved and repeated.",
        f"Command: `make bench ARGS='{' '.join(sys.argv[1:])}'`; {a.rounds} round(s), {a.duration:g} s per case, "
        f"dnsperf {version(['dnsperf', '-h'])} `-c {a.load.clients} -q {a.load.outstanding} -t {a.load.timeout}`"
        + (
            " -v (percentiles from per-query lines, 10 µs buckets, upper edge)" if a.latency else ""
        ),
        f"Pinning: single-process peers on CPU {a.peer_cpus}; dnsperf and NSD on CPU {a.loadgen_cpus}. "
        "*peer CPU %* and *QPS per peer CPU-second* (= QPS ÷ the peer's CPU share) show when the load "
        "generator, not the peer, was the limit (peer well under 100%).",
        f"Upstream: NSD {version(['nsd', '-v'])} on 127.0.0.1:{a.upstream_port}, `* A {probe.UPSTREAM_A}`, "
        f"`* AAAA {probe.UPSTREAM_AAAA}`, RRL off; {upstream}.",
        f"Blocklist: {inputs.meta['source']}, the same list for every peer: lachan `format: domains` "
        "(name + subdomains), unbound `local-zone always_nxdomain`, dnsmasq `addn-hosts` 0.0.0.0/:: "
        "(Pi-hole v4 style, exact names only), pdns-recursor RPZ `CNAME .` for `d` and `*.d`, "
        "baseline a Python set (name + parents).",
        f"Versions: unbound {version(['unbound', '-V'])}, dnsmasq {version(['dnsmasq', '-v'])}, "
        f"pdns-recursor {version(['pdns_recursor', '--version'])}.",
        "Every peer is a caching forwarder restarted cold for each round (1 thread / 1 process); the "
        "baseline is `benchmarks/baseline_dnslib.py` (dnslib DNSServer, thread per request, no cache).",
    ] + notes


def scrub(text: str) -> str:
    """Results carry no machine paths: make them repository-relative."""
    return text.replace(sys.executable, "python").replace(str(HERE.parent) + "/", "")


def results_path(a: argparse.Namespace, started: datetime.datetime) -> Path:
    if a.out:
        return a.out
    base = HERE / "results" / f"{started:%Y-%m-%d}"
    return (
        base
        if not base.with_suffix(".json").exists()
        else base.with_name(f"{started:%Y-%m-%d-%H%M}")
    )


def run_all(a: argparse.Namespace, b: cases.Bench, peers: list) -> tuple[list, list, list]:
    recs, rows, scale = [], [], []
    for rnd in range(1, a.rounds + 1):
        for p in peers if rnd % 2 else list(reversed(peers)):
            log(f"round {rnd}: {p.name} on 127.0.0.1:{p.port} (cpus {p.cpus})")
            rec, rws = cases.bench_peer(b, p, rnd)
            recs.append(rec)
            rows.extend(rws)
    lachan = next((p for p in peers if p.kind == "lachan"), None)
    can_scale = a.lachan_cmd or b.caps.workers
    if lachan and a.workers and "hit" in a.workloads and can_scale:
        log(f"scaling: lachan workers {a.workers}, unpinned")
        scale = cases.scaling(b, lachan, a.workers, a.rounds)
    return recs, rows, scale


def report_only(path: Path) -> None:
    """Re-render <path>.md from <path> (a results JSON), e.g. after changing report.py."""
    res = json.loads(path.read_text())
    res["verdicts"] = [
        asdict(v) for v in report.verdicts(res["cases"], res["peers"], res.get("scaling") or [])
    ]
    path.write_text(json.dumps(res, indent=1))
    md = report.markdown(res)
    path.with_suffix(".md").write_text(md)
    print(md)


SCALING_NOTE = (
    "Workers run unpinned with the load generator pinned to CPU 0, so the second worker shares "
    "a core with dnsperf and NSD, and dnsperf on one core sends little more than one worker "
    "serves: raw QPS cannot show scaling here. Each count therefore also runs paced at the same "
    "load per worker (second table), where *QPS per peer CPU-second* shows whether workers "
    "contend: if not, N workers on N dedicated cores serve N times one worker's load."
)


def setup_bench(a: argparse.Namespace, peers: list, notes: list[str]) -> cases.Bench:
    """Inputs built, lachan's capabilities probed: everything the cases share."""
    inputs = data.prepare(WORK / "data", SIZES, max(2, a.rounds), a.blocklist, a.synthetic, log)
    b = cases.Bench(inputs, WORK / "run", a.workloads, a.duration, a.load, a.loadgen_cpus,
                    a.upstream_port, a.lachan_cmd)  # fmt: skip
    b.rundir.mkdir(parents=True, exist_ok=True)
    if any(p.kind == "lachan" for p in peers) and not a.lachan_cmd:
        b.caps = lachan_caps(b.rundir, inputs.path("blocklist.txt"))
        if not byte_compile(lachan_package()):
            notes.append("lachan's bytecode could not be written: its starts compile from source.")
        notes += caps_notes(b.caps)
    return b


def run_guarded(a: argparse.Namespace, b: cases.Bench, peers: list) -> tuple[str, list, list, list]:
    """Upstream and every case; whatever happens, stop every process this harness started."""

    def on_signal(signum, _frame):
        for proc in list(b.started):
            proc.stop(grace=2)
        sys.exit(f"signal {signum}: stopped what this harness started")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        upstream = start_upstream(a, b)
        log(f"upstream: {upstream}")
        return (upstream, *run_all(a, b, peers))
    finally:
        for proc in list(b.started):
            b.stop(proc)


def write_results(res: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(scrub(json.dumps(res, indent=1, default=str)))
    md = scrub(report.markdown(res))
    out.with_suffix(".md").write_text(md)
    print(md)
    log(f"wrote {out.with_suffix('.json')} and .md in {res['elapsed_s'] / 60:.1f} min")


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    if a.report_only:
        return report_only(a.report_only)
    a.load = dnsperf.Load(latency=a.latency)
    for tool in ("nsd", "dnsperf"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install -y {tool}")
    notes: list[str] = []
    peers = usable(a, notes)
    started, t0 = datetime.datetime.now(datetime.UTC), time.monotonic()
    b = setup_bench(a, peers, notes)
    upstream, recs, rows, scale = run_guarded(a, b, peers)
    settings = {"argv": sys.argv[1:], "rounds": a.rounds, "duration_s": a.duration,
                "workloads": a.workloads, "load": asdict(a.load), "peer_cpus": a.peer_cpus,
                "loadgen_cpus": a.loadgen_cpus}  # fmt: skip
    res = {
        "started_utc": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 1),
        "settings": settings,
        "setup": setup_lines(a, b.inputs, upstream, notes),
        "inputs": b.inputs.meta,
        "peers": recs,
        "cases": rows,
        "scaling": scale,
        "scaling_note": SCALING_NOTE,
        "verdicts": [asdict(v) for v in report.verdicts(rows, recs, scale or [])],
    }
    write_results(res, results_path(a, started))


if __name__ == "__main__":
    main()
