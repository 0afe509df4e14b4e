"""Helpers for the collector tests: real site keys and ledgers, and the collector on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web

from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.keys import load_private_key, write_keypair
from resolver.audit.ledger import FilterState, Ledger

T0 = 1_764_288_000  # 2025-11-28T00:00:00Z, an hour boundary
STATE = FilterState("sha256:idx0001", T0 - 3600, "sha256:pol0001", "0.1.0")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def keys(folder: Path) -> tuple[Path, Path]:
    """A fresh site key pair: (audit.key, audit.pub)."""
    return write_keypair(folder)


def write_ledger(path: Path, key: Path, site: str, hours: int, start: int = T0,
                 instance: str = "gw1", blocks: int = 3) -> None:  # fmt: skip
    """Append ``hours`` hourly records (100+h allowed, ``blocks`` adult and h gambling blocks)."""
    clock = FakeClock(start)
    with Ledger.open(path, load_private_key(key), site=site, site_kind="school",
                     instance=instance) as ledger:  # fmt: skip
        acc = PeriodAccumulator(clock=clock, not_before=ledger.last_period_end)
        for hour in range(hours):
            acc.add("allowed", "none", "school", 100 + hour)
            acc.add("blocked", "adult", "school", blocks)
            acc.add("blocked", "gambling", "school", hour)
            clock.now = acc.period_end
            counts = acc.roll()
            assert counts is not None
            ledger.append(counts, STATE)


@contextmanager
def running(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, seconds: float = 20.0, verify: bool | str = True) -> None:
    """Poll ``url`` until it answers (any status) or fail after ``seconds``."""
    import time

    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=2, verify=verify)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {seconds} s") from None
            time.sleep(0.1)


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    import subprocess

    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    return cert, key


def registry_of(path: Path, sites: dict[str, Path]) -> Path:
    """A registry YAML enrolling each site id with the public key at its path."""
    import yaml

    from resolver.audit.keys import inline_public, load_public_key

    entries = [{"id": site, "kind": "school", "district": "Quận 1",
                "public_key": inline_public(load_public_key(pub))} for site, pub in sites.items()]  # fmt: skip
    path.write_text(yaml.safe_dump({"sites": entries}, allow_unicode=True), encoding="utf-8")
    return path
