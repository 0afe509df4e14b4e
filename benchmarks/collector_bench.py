"""The province collector: ingest rate of signed records over HTTP, and dashboard page time.

    .venv/bin/python benchmarks/collector_bench.py [--sites 1000] [--hours 24] [--db both]
        [--concurrency 64] [--dash-sites 2000] [--months 12] [--json FILE]

Ingest: ``--sites`` enrolled sites, each with ``--hours`` hourly records signed with its own
Ed25519 key, pushed concurrently (one POST per site, ``--concurrency`` at once) to a real
``lachan collector serve`` process; every signature and chain link is checked and every record
stored. Records/s = records / wall time of the pushes (signing is done beforehand).
Dashboard: ``--dash-sites`` sites with a year of history. The dashboard reads only the chain
tips and the monthly sums that ingest maintains (never the records), so those two tables are
filled directly with a year's worth of rows; then GET / 40 times after a login, p50/p95.
PostgreSQL: a throw-away cluster (tests/collector/pg_server.py), fsync off as in the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "collector"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from pg_server import PgCluster  # noqa: E402

from resolver.audit.canonical import GENESIS  # noqa: E402
from resolver.audit.keys import key_id  # noqa: E402
from resolver.audit.record import AuditRecord, sign  # noqa: E402
from resolver.collector.auth import add_user  # noqa: E402
from resolver.collector.db import Database  # noqa: E402
from resolver.collector.ingest import enroll  # noqa: E402

T0 = 1_764_288_000
PASSWORD = "benchmark-password"


def site_ledger(site: str, hours: int) -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    prev, lines = GENESIS, []
    for h in range(hours):
        record = sign(AuditRecord(
            seq=h, site=site, site_kind="school", instance="gw1", period_start=T0 + h * 3600,
            period_end=T0 + (h + 1) * 3600,
            answers={"allowed": {"none": {"school": 900 + h}},
                     "blocked": {"adult": {"school": 7}, "bypass": {"school": 1}}},
            safe_search={}, index_digest="sha256:i", index_time=T0, policy_digest="sha256:p",
            version="0.1.0", key_id=key_id(key.public_key()), prev=prev,
        ), key)  # fmt: skip
        lines.append(record.line())
        prev = record.digest()
    return key, b"".join(lines)


def serve(url: str, registry: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "resolver.cli", "collector", "serve", "--db", url,
                             "--listen", f"127.0.0.1:{port}", "--registry", str(registry)],
                            cwd=ROOT)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
            return proc
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("collector did not start")


def registry(tmp: Path, ids: list[str]) -> Path:
    path = tmp / "sites.yaml"
    sites = [{"id": s, "kind": "school" if i % 10 else "isp", "district": f"Quận {i % 12}",
              "commune": f"Phường {i % 97}"} for i, s in enumerate(ids)]  # fmt: skip
    path.write_text(yaml.safe_dump({"sites": sites}), encoding="utf-8")
    return path


async def push_all(base: str, bodies: dict[str, bytes], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(site: str, body: bytes) -> None:
            async with gate, http.post(f"{base}/api/v1/sites/{site}/records", data=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"{site}: {r.status} {await r.text()}")

        start = time.perf_counter()
        await asyncio.gather(*(one(s, b) for s, b in bodies.items()))
        return time.perf_counter() - start


def bench_ingest(url: str, tmp: Path, args: argparse.Namespace, port: int) -> dict[str, float]:
    db = Database(url)
    db.migrate()
    ids = [f"s{i:05d}" for i in range(args.sites)]
    bodies = {}
    for site in ids:
        key, bodies[site] = site_ledger(site, args.hours)
        enroll(db, site, key.public_key(), T0)
    proc = serve(url, registry(tmp, ids), port)
    try:
        elapsed = asyncio.run(push_all(f"http://127.0.0.1:{port}", bodies, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with db.tx() as tx:
        stored = tx.run("SELECT COUNT(*) FROM records")[0][0]
    assert stored == args.sites * args.hours, stored
    return {
        "records": stored,
        "seconds": round(elapsed, 2),
        "records_per_s": round(stored / elapsed),
    }


def fill_history(db: Database, ids: list[str], months: int) -> None:
    with db.tx() as tx:
        for i, site in enumerate(ids):
            tx.run("INSERT INTO chains VALUES (?, 'gw1', ?, ?, ?, 3600, ?, 'valid', ?)",
                   (site, months * 720, "d" * 64, T0, T0 - 3600, T0))  # fmt: skip
            for m in range(months):
                for cat, n in (("*", 700_000), ("adult", 500), ("gambling", 90), ("bypass", 12)):
                    tx.run("INSERT INTO monthly VALUES (?, ?, ?, ?)",
                           (site, f"2025-{m + 1:02d}", cat, n + i))  # fmt: skip


def bench_dashboard(url: str, tmp: Path, args: argparse.Namespace, port: int) -> dict[str, float]:
    db = Database(url)
    db.migrate()
    ids = [f"d{i:05d}" for i in range(args.dash_sites)]
    fill_history(db, ids, args.months)
    add_user(db, "bench", "viewer", PASSWORD)
    proc = serve(url, registry(tmp, ids), port)
    try:
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        form = http.get(base + "/login", timeout=30).text
        csrf = form.split('name="csrf" value="')[1].split('"')[0]
        http.post(base + "/login", data={"csrf": csrf, "name": "bench", "password": PASSWORD})
        times = []
        for _ in range(40):
            start = time.perf_counter()
            page = http.get(base + "/", timeout=60)
            times.append(time.perf_counter() - start)
            assert page.status_code == 200 and "Mức độ bao phủ" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    times.sort()
    return {"p50_ms": round(1000 * statistics.median(times)),
            "p95_ms": round(1000 * times[int(0.95 * len(times)) - 1])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--dash-sites", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    pg = PgCluster() if args.db != "sqlite" else None
    try:
        for backend in ("sqlite", "postgresql"):
            if args.db not in (backend, "both"):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                urls = [pg.new_database() if pg else "" for _ in range(2)]
                if backend == "sqlite":
                    urls = [f"sqlite:///{tmp}/ingest.db", f"sqlite:///{tmp}/dash.db"]
                results[backend] = {
                    "ingest": bench_ingest(urls[0], Path(tmp), args, 18470),
                    "dashboard": bench_dashboard(urls[1], Path(tmp), args, 18471),
                }
                print(backend, json.dumps(results[backend]), flush=True)
    finally:
        if pg:
            pg.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
