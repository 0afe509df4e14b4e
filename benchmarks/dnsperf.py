"""Run dnsperf for a bounded time and turn its output into numbers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SUMMARY = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "runtime_s": r"Run time \(s\):\s+([\d.]+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "avg_s": r"Average Latency \(s\):\s+([\d.]+)",
    "max_s": r"Average Latency \(s\):\s+[\d.]+ \(min [\d.]+, max ([\d.]+)",
}
BUCKET_S = 1e-5  # 10 µs latency buckets: exact enough for p99, bounded memory at 300k QPS


@dataclass(frozen=True)
class Load:
    """How hard dnsperf pushes: 10 clients x 100 outstanding, as the reference harness does."""

    clients: int = 10
    outstanding: int = 100
    timeout: int = 2
    latency: bool = True  # -v per-query lines (costs the generator ~5%) -> percentiles
    max_qps: int | None = None  # -Q: a paced, open-loop-like load, so latency is not queueing


def percentiles(hist: Counter[int]) -> dict[str, float]:
    """p50/p90/p99/p99.9 in seconds from a histogram of BUCKET_S buckets."""
    total, out, seen = sum(hist.values()), {}, 0
    wanted = [(0.5, "p50_s"), (0.9, "p90_s"), (0.99, "p99_s"), (0.999, "p999_s")]
    for bucket in sorted(hist):
        seen += hist[bucket]
        while wanted and seen >= wanted[0][0] * total:
            out[wanted.pop(0)[1]] = round(
                (bucket + 1) * BUCKET_S, 6
            )  # upper edge: never flattering
    return out


def parse(text_lines) -> dict:
    """Summary figures, response codes and latency percentiles from dnsperf's stdout."""
    hist: Counter[int] = Counter()
    summary: list[str] = []
    for line in text_lines:
        if line.startswith("> "):  # "> NOERROR name A 0.000123" (T = timed out)
            parts = line.split()
            if len(parts) >= 4 and parts[1] != "T":
                try:
                    hist[int(float(parts[-1]) / BUCKET_S)] += 1
                except ValueError:
                    pass
        elif summary or line.startswith("Statistics:"):
            summary.append(line)
    text = "".join(summary)
    out: dict = {}
    for key, rx in SUMMARY.items():
        if m := re.search(rx, text):
            out[key] = float(m.group(1)) if key.endswith("_s") or key == "qps" else int(m.group(1))
    if m := re.search(r"Response codes:\s+(.*)", text):
        out["rcodes"] = {rc: int(n) for rc, n in re.findall(r"([A-Z0-9]+) (\d+) \(", m.group(1))}
    out.update(percentiles(hist))
    if "qps" not in out:
        out["error"] = "no dnsperf summary: " + text[-300:].replace("\n", " ")
    return out


def run(
    host: str,
    port: int,
    datafile: Path,
    seconds: float,
    load: Load,
    scratch: Path,
    cpus: str | None = None,
    passes: int | None = None,
) -> dict:
    """One dnsperf case; `passes` runs the file that many times instead (warm-up, no -v)."""
    argv = [
        "dnsperf",
        "-s",
        host,
        "-p",
        str(port),
        "-d",
        str(datafile),
        "-l",
        str(seconds),
        "-c",
        str(load.clients),
        "-q",
        str(load.outstanding),
        "-t",
        str(load.timeout),
    ]
    argv += ["-n", str(passes)] if passes else (["-v"] if load.latency else [])
    argv += ["-Q", str(load.max_qps)] if load.max_qps and not passes else []
    if cpus:
        argv = ["taskset", "-c", cpus, *argv]
    out = scratch / f"dnsperf-{port}.out"
    with out.open("w") as f:  # a file, not a pipe: reading 300k lines/s would steal the CPU
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            p.wait(timeout=seconds + load.timeout + 60)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)  # our own dnsperf, by PID
            p.wait()
    with out.open(errors="replace") as f:
        res = parse(f)
    out.unlink()
    return res
