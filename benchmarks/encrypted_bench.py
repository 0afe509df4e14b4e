"""DoT and DoH: lachan beside unbound and dnsdist, in the same run, on loopback.

Per server and transport: cache-hit QPS on persistent connections (dnsperf -m dot / -m doh)
and the server's CPU microseconds per query, a blocked name's (lachan only: the others do not
filter), new TLS connections per second (``openssl s_time -new``), and memory per idle TLS
connection (N held open, RSS difference), for DoT and for DoH (HTTP/2, the client's preface
sent, as a browser's connection between queries), each on a fresh server.
Every server forwards to the same stub upstream and is pinned to one CPU; prints a table and
writes JSON to benchmarks/results/.

    .venv/bin/python benchmarks/encrypted_bench.py [--seconds 10] [--idle 10000]
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dnsperf
from lachan_peer import lachan_command
from procs import Proc, cpu_seconds, rss_kib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.stub_upstream import StubUpstream, free_port  # noqa: E402
from tests.tls_helpers import make_pki  # noqa: E402

HIT, BLOCKED = "www.example.test A\n", "casino.example.test A\n"  # under16 keyword "casino"
# The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113 3.4).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")


def _lachan(d: Path, ports: tuple[int, int, int], pki, up: str) -> list[str]:
    conf = d / "lachan.yaml"
    conf.write_text("lists: {enabled: false}\ntcp: {max_connections: 30000, idle_timeout: 300}\n")
    return lachan_command() + [
        "serve", "--config", str(conf), "--listen", f"127.0.0.1:{ports[2]}", "--upstream", up,
        "--listen-tls", f"127.0.0.1:{ports[0]}", "--listen-https", f"127.0.0.1:{ports[1]}",
        "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--log-level", "warning",
    ]  # fmt: skip


def _unbound(d: Path, ports: tuple[int, int, int], pki, up: str) -> list[str]:
    host, port = up.split(":")
    conf = d / "unbound.conf"
    conf.write_text(f"""server:
  interface: 127.0.0.1@{ports[0]}
  interface: 127.0.0.1@{ports[1]}
  interface: 127.0.0.1@{ports[2]}
  tls-port: {ports[0]}
  https-port: {ports[1]}
  tls-service-key: "{pki.key}"
  tls-service-pem: "{pki.cert}"
  do-ip6: no
  num-threads: 1
  incoming-num-tcp: 6000
  tcp-idle-timeout: 300000
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-daemonize: no
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  local-zone: "test." nodefault
  domain-insecure: "test."
forward-zone:
  name: "."
  forward-addr: {host}@{port}
remote-control:
  control-enable: no
""")
    return ["unbound", "-d", "-c", str(conf)]


def _dnsdist(d: Path, ports: tuple[int, int, int], pki, up: str) -> list[str]:
    conf = d / "dnsdist.conf"
    conf.write_text(f"""
setLocal("127.0.0.1:{ports[2]}")
newServer({{address="{up}"}})
addTLSLocal("127.0.0.1:{ports[0]}", "{pki.cert}", "{pki.key}", {{maxConcurrentTCPConnections=30000}})
addDOHLocal("127.0.0.1:{ports[1]}", "{pki.cert}", "{pki.key}", "/dns-query")
setMaxTCPClientThreads(1)
pc = newPacketCache(100000)
getPool(""):setCache(pc)
""")
    return ["dnsdist", "--supervised", "--disable-syslog", "-C", str(conf)]


SERVERS = {"lachan": _lachan, "unbound": _unbound, "dnsdist": _dnsdist}


def _ready(port: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def _dnsperf(mode: str, port: int, data: Path, seconds: float, scratch: Path) -> dict:
    argv = ["dnsperf", "-m", mode, "-s", "127.0.0.1", "-p", str(port), "-d", str(data),
            "-l", str(seconds), "-c", "4", "-q", "100", "-t", "2"]  # fmt: skip
    if mode == "doh":  # GET, dnsperf's default (browsers mostly POST; the server cost is alike)
        argv += ["-O", f"doh-uri=https://127.0.0.1:{port}/dns-query"]
    out = scratch / f"dnsperf-{mode}-{port}.out"
    with out.open("w") as f:
        subprocess.run(["taskset", "-c", "0", *argv], stdout=f, stderr=subprocess.STDOUT,
                       timeout=seconds + 60, check=False)  # fmt: skip
    with out.open(errors="replace") as f:
        return dnsperf.parse(f)


def _costed(proc: Proc, mode: str, port: int, data: Path, seconds: float, scratch: Path) -> dict:
    """dnsperf's figures plus the server's CPU per answered query (``server_us_per_query``):
    on a shared machine the server's share of its core swings, its cost per query less so."""
    before = cpu_seconds(proc.tree())
    result = _dnsperf(mode, port, data, seconds, scratch)
    spent = cpu_seconds(proc.tree()) - before
    if result.get("completed"):
        result["server_us_per_query"] = round(1e6 * spent / result["completed"], 1)
    return result


def _new_connections(port: int, seconds: int) -> float:
    run = subprocess.run(
        ["taskset", "-c", "0", "openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
         "-time", str(seconds)], capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    match = re.search(r"(\d+) connections in ([\d.]+) real seconds", run.stdout)
    return round(int(match.group(1)) / float(match.group(2)), 1) if match else 0.0


def _idle_memory(proc: Proc, port: int, count: int, ca: Path, doh: bool) -> tuple[float, int]:
    """KiB of server RSS per idle TLS connection, and how many were really held. DoH
    connections negotiate h2 and send the client preface, then stay quiet."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    if doh:
        context.set_alpn_protocols(["h2"])
    time.sleep(1)
    before = rss_kib(proc.tree())
    held = []
    try:
        for _ in range(count):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(context.wrap_socket(raw, server_hostname="dns.example.vn"))
            if doh:
                held[-1].sendall(H2_PREFACE)
        time.sleep(2)  # lachan trims a quiet HTTP/2 session after 1 s (transport/doh.py)
        after = rss_kib(proc.tree())
    except OSError:
        after = rss_kib(proc.tree())
    finally:
        for sock in held:
            sock.close()
    return (round((after - before) / len(held), 2) if held else 0.0), len(held)


def _start(name: str, up: str, pki, d: Path) -> tuple[Proc, tuple[int, int, int]] | str:
    """A fresh server (DoT, DoH and plain ports), or why it did not start."""
    ports = (free_port(("127.0.0.1",)), free_port(("127.0.0.1",)), free_port(("127.0.0.1",)))
    d.mkdir()
    proc = Proc(name, SERVERS[name](d, ports, pki, up), d / "log", cpus="1")
    if not (_ready(ports[0]) and _ready(ports[1])):
        proc.stop()
        return "did not start: " + proc.log_tail()
    return proc, ports


def measure(name: str, a: argparse.Namespace, up: str, pki, work: Path, index: int) -> dict:
    started = _start(name, up, pki, work / name)
    if isinstance(started, str):
        return {"error": started}
    proc, ports = started
    try:
        hit, blocked = work / "hit.txt", work / "blocked.txt"
        out: dict = {}
        # Idle memory first, on a fresh server: after the load runs (or the other transport's
        # idle connections), the allocator's free lists would absorb part of the new
        # connections and flatter the figure.
        out["idle_kib_per_conn"], out["idle_held"] = _idle_memory(
            proc, ports[0], a.idle, pki.ca, doh=False
        )
        for mode, port in (("dot", ports[0]), ("doh", ports[1])):
            _dnsperf(mode, port, hit, 1, work)  # warm the cache
            out[f"{mode}_hit"] = _costed(proc, mode, port, hit, a.seconds, work)
            if name == "lachan":
                out[f"{mode}_blocked"] = _costed(proc, mode, port, blocked, a.seconds, work)
        out["dot_new_conn_per_s"] = _new_connections(ports[0], max(3, int(a.seconds)))
    finally:
        proc.stop()
    started = _start(name, up, pki, work / f"{name}-doh-idle")
    if isinstance(started, str):
        out["doh_idle_error"] = started
        return out
    proc, ports = started
    try:
        out["doh_idle_kib_per_conn"], out["doh_idle_held"] = _idle_memory(
            proc, ports[1], a.idle, pki.ca, doh=True
        )
    finally:
        proc.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--idle", type=int, default=10_000, help="idle TLS connections held")
    parser.add_argument("--servers", default="lachan,unbound,dnsdist")
    a = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp, StubUpstream() as stub:
        work = Path(tmp)
        pki = make_pki(work / "pki")
        (work / "hit.txt").write_text(HIT)
        (work / "blocked.txt").write_text(BLOCKED)
        for index, name in enumerate(a.servers.split(",")):
            results[name] = measure(name, a, stub.address, pki, work, index)
            print(name, _row(results[name]), flush=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = HERE / "results" / f"encrypted-{stamp}.json"
    out.write_text(json.dumps({"args": vars(a), "results": results}, indent=1))
    print(f"written: {out}")


def _row(r: dict) -> str:
    if "error" in r:
        return r["error"]
    qps = {k: round(v.get("qps", 0)) for k, v in r.items() if isinstance(v, dict)}
    cost = {k: v.get("server_us_per_query") for k, v in r.items() if isinstance(v, dict)}
    return (f"QPS {qps}  server us/query {cost}  new TLS conn/s {r['dot_new_conn_per_s']}  "
            f"idle DoT {r['idle_kib_per_conn']} KiB/conn over {r['idle_held']}, "
            f"DoH {r.get('doh_idle_kib_per_conn')} KiB/conn over {r.get('doh_idle_held')}")  # fmt: skip


if __name__ == "__main__":
    main()
