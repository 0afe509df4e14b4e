"""Resource-pressure benchmark: lachan's RSS and cache-hit p99 under a unique-miss flood, and
its RSS holding N idle TCP connections (``python benchmarks/pressure.py``, under 2 minutes).

Writes benchmarks/results/pressure.json and prints a markdown table. The helpers here are
shared with tests/integration/test_pressure.py, which asserts bounds on the same figures.
"""

from __future__ import annotations

import argparse
import errno
import json
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dns.message

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pressure.json"

NSD_ZONE = """$ORIGIN .
$TTL 3600
@ IN SOA ns.pressure. hostmaster.pressure. 1 3600 600 86400 300
@ IN NS ns.pressure.
ns.pressure. IN A 127.0.0.1
* IN A 192.0.2.1
* IN AAAA 2001:db8::1
"""


def nsd_command(workdir: Path, port: int) -> list[str]:
    """Argv of NSD, authoritative for the root with a wildcard: it answers every name."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "root.zone").write_text(NSD_ZONE)
    settings = {
        "ip-address": f"127.0.0.1@{port}",
        "server-count": "1",
        "username": '""',
        "chroot": '""',
        "zonesdir": f'"{workdir}"',
        "database": '""',
        "zonelistfile": f'"{workdir}/zone.list"',
        "xfrdfile": f'"{workdir}/xfrd.state"',
        "xfrdir": f'"{workdir}"',
        "pidfile": f'"{workdir}/nsd.pid"',
        "logfile": f'"{workdir}/nsd.log"',
        # NSD's response rate limiting would drop a flood of wildcard answers.
        "rrl-ratelimit": "0",
        "rrl-whitelist-ratelimit": "0",
    }
    server = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    zone = 'zone:\n  name: "."\n  zonefile: "root.zone"\n'
    conf = f"server:\n{server}remote-control:\n  control-enable: no\n{zone}"
    (workdir / "nsd.conf").write_text(conf)
    return ["nsd", "-d", "-c", str(workdir / "nsd.conf")]


# -- helpers shared with tests/integration/test_pressure.py ---------------------------------
def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` from /proc (VmRSS, kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def query(name: str) -> bytes:
    return dns.message.make_query(name, "A").to_wire()


def open_idle(port: int, count: int, seconds: float) -> list[socket.socket]:
    """``count`` non-blocking connects, waiting until each is settled or ``seconds`` pass."""
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        assert code in (0, errno.EINPROGRESS), errno.errorcode.get(code, code)
        socks.append(sock)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and states(socks)["connecting"]:
        time.sleep(0.2)
    return socks


def states(socks: list[socket.socket]) -> dict[str, int]:
    """How many connections are open, closed by the peer, or still connecting."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN | select.POLLOUT | select.POLLERR | select.POLLHUP)
    events = dict(poller.poll(0))
    counts = {"open": 0, "closed": 0, "connecting": 0}
    for sock in socks:
        event = events.get(sock.fileno(), 0)
        if event & (select.POLLIN | select.POLLERR | select.POLLHUP):
            counts["closed"] += 1  # idle clients never get data: readable means EOF or RST
        elif event & select.POLLOUT:
            counts["open"] += 1
        else:
            counts["connecting"] += 1
    return counts


def flood_file(path: Path, count: int) -> Path:
    path.write_text("".join(f"u{i}.flood.example.test A\n" for i in range(count)))
    return path


def run_flood(port: int, names: Path, count: int, seconds: int) -> subprocess.Popen[str]:
    """dnsperf sending every unique name once at ``count / seconds`` queries per second."""
    rate = count // seconds
    args = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(names), "-n", "1"]
    args += ["-Q", str(rate), "-l", str(seconds + 5), "-t", "2", "-q", "10000"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def measure_hits(port: int, name: str, until: subprocess.Popen[str], limit: float) -> list[float]:
    """Latency (ms) of a cached name, queried every 20 ms while the flood runs."""
    samples = []
    deadline = time.monotonic() + limit
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        wire = query(name)
        while until.poll() is None and time.monotonic() < deadline:
            begun = time.perf_counter()
            sock.sendto(wire, ("127.0.0.1", port))
            try:
                sock.recv(4096)
                samples.append((time.perf_counter() - begun) * 1000)
            except TimeoutError:
                samples.append(1000.0)
            time.sleep(0.02)
    return samples


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


# -- the benchmark ---------------------------------------------------------------------------
def _lachan(workdir: Path, upstream: int, config: str) -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.stub_upstream import LachanProcess  # the same server harness the tests use

    return LachanProcess(workdir, [f"127.0.0.1:{upstream}"], config, ipv6=False).start()


def _nsd(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(nsd_command(workdir / "nsd", port), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            sock.sendto(query("up.pressure"), ("127.0.0.1", port))
            try:
                sock.recv(512)
                return process, port
            except TimeoutError:
                continue
    process.kill()
    raise RuntimeError("nsd did not answer within 10 s")


def flood_case(workdir: Path, upstream: int, count: int, seconds: int, cache: int) -> dict:
    """RSS and warmed-name hit latency while ``count`` unique names miss in ``seconds``."""
    server = _lachan(workdir, upstream, f"cache: {{size: {cache}}}\n")
    try:
        pid = server.process.pid
        hits_name = "warm.pressure"
        measure_hits_once(server.port, hits_name)
        baseline = rss_mib(pid)
        flood = run_flood(server.port, flood_file(workdir / "names", count), count, seconds)
        hits = measure_hits(server.port, hits_name, flood, seconds + 10)
        peak = rss_mib(pid)
        flood.communicate(timeout=30)
        return {
            "queries": count, "seconds": seconds, "cache_size": cache,
            "rss_before_mib": round(baseline, 1), "rss_peak_mib": round(peak, 1),
            "hit_samples": len(hits), "hit_p50_ms": round(statistics.median(hits), 2),
            "hit_p99_ms": round(p99(hits), 2), "hit_max_ms": round(max(hits), 2),
        }  # fmt: skip
    finally:
        server.stop()


def measure_hits_once(port: int, name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(query(name), ("127.0.0.1", port))
        sock.recv(4096)


def idle_case(workdir: Path, upstream: int, count: int) -> dict:
    """RSS of a server holding ``count`` idle TCP connections (its limit set above them)."""
    raise_nofile(2 * count + 1_000)
    config = f"tcp: {{max_connections: {count + 100}, idle_timeout: 120}}\n"
    server = _lachan(workdir, upstream, config)
    socks: list[socket.socket] = []
    try:
        baseline = rss_mib(server.process.pid)
        began = time.monotonic()
        socks = open_idle(server.port, count, seconds=20.0)
        time.sleep(1.0)
        held = states(socks)
        peak = rss_mib(server.process.pid)
        return {
            "connections": count, "held": held["open"], "open_seconds": round(time.monotonic() - began, 1),
            "rss_before_mib": round(baseline, 1), "rss_held_mib": round(peak, 1),
            "kib_per_connection": round((peak - baseline) * 1024 / max(1, held["open"]), 2),
        }  # fmt: skip
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def markdown(result: dict) -> str:
    flood, idle = result["flood"], result["idle"]
    rows = [
        ("unique-miss flood", f"{flood['queries']:,} names in {flood['seconds']} s, cache {flood['cache_size']:,}",
         f"{flood['rss_before_mib']} -> {flood['rss_peak_mib']}",
         f"hit p50 {flood['hit_p50_ms']} ms, p99 {flood['hit_p99_ms']} ms (n={flood['hit_samples']})"),
        ("idle TCP", f"{idle['held']:,} of {idle['connections']:,} held",
         f"{idle['rss_before_mib']} -> {idle['rss_held_mib']}",
         f"{idle['kib_per_connection']} KiB per connection"),
    ]  # fmt: skip
    lines = ["| case | load | RSS MiB | result |", "|---|---|---|---|"]
    return "\n".join(lines + [f"| {' | '.join(row)} |" for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--cache", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lachan-pressure-") as tmp:
        work = Path(tmp)
        nsd, port = _nsd(work)
        try:
            result = {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "flood": flood_case(work, port, args.queries, args.seconds, args.cache),
                "idle": idle_case(work, port, args.connections),
            }
        finally:
            nsd.terminate()
            nsd.wait(timeout=10)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
