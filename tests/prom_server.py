"""A real Prometheus server on loopback for tests: scrapes given targets every second.

Reusable from any test (e.g. an end-to-end test with real DNS queries):

    from prom_server import PrometheusServer
    with PrometheusServer(tmp_path, ["127.0.0.1:9153"]) as prom:
        prom.wait_for("sum(lachan_answers_total)", lambda v: v == 3.0)

Tests in another folder can reach this module with ``sys.path.insert(0, <tests dir>)`` in their
conftest, or by ``pytest_plugins``-free import once tests/ is on ``pythonpath``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.tools import require

START_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the caller retries if someone takes it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def scrape_config(targets: Sequence[str], rule_files: Sequence[Path] = ()) -> str:
    """A Prometheus config (JSON is YAML) scraping ``targets`` as job ``lachan`` every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": "lachan",
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    return json.dumps(config, indent=2)


class PrometheusServer:
    """Runs ``prometheus`` with its config, data and log under ``workdir``."""

    def __init__(
        self, workdir: Path, targets: Sequence[str], rule_files: Sequence[Path] = ()
    ) -> None:
        self.workdir = Path(workdir)
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start and wait until ready; retries on a port race, raises with the log if it fails."""
        config = self.workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets, self.rule_files))
        for _attempt in range(3):
            self.port = free_port()
            self._proc = self._spawn(config)
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"prometheus did not start:\n{self.log()[-3000:]}")

    def _spawn(self, config: Path) -> subprocess.Popen[bytes]:
        log = (self.workdir / "prometheus.log").open("ab")
        args = [
            require("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        return subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Terminate the server (kill after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path> and return its ``data`` (raises on an error status)."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus API {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the ``result`` vector."""
        return list(self.api("query", query=expr)["result"])

    def scalar(self, expr: str) -> float | None:
        """The value of a single-element instant vector, or None if it is empty."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{expr} returned {len(result)} series")
        return float(result[0]["value"][1])

    def wait_for(
        self, expr: str, ok: Callable[[float | None], bool], timeout: float = 20.0
    ) -> float | None:
        """Poll ``expr`` until ``ok(value)``; raises AssertionError with the last value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(expr)
            if ok(value):
                return value
            time.sleep(0.2)
        raise AssertionError(f"{expr}: last value {value!r} after {timeout}s\n{self.log()[-2000:]}")
