"""``lachan collector serve`` as a real subprocess on loopback, stopped after the test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from collector_helpers import free_port, wait_http


@contextmanager
def collector_serve(
    db_url: str, registry: Path, *extra: str, ca: str | None = None
) -> Iterator[str]:
    """Start the collector (HTTPS when ``ca`` is given); yields its base URL; no traceback."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "resolver.cli", "collector", "serve", "--db", db_url,
         "--listen", f"127.0.0.1:{port}", "--registry", str(registry), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    try:
        wait_http(base + "/login", verify=ca or True)  # not the API: a 404 there is a failure
        yield base
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        assert "Traceback" not in err, err
