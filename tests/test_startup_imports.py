"""`lachan serve` loads only what its config uses: the start-up budget (ready in 0.2 s).

Issues 13 and 19 ask for a server that answers within 0.2 s of its start; at 0.25 s most of
the time went to importing parts the embedded default never runs: the DoT/DoH stack (h2,
h11, hpack, nghttp2 through ctypes), cryptography's x509 and signatures, the console
(aiohttp, argon2), list downloads (requests), the subscriber and collector stores. Each now
loads where resolver.compose wires its piece, and only when the config asks for it. This
test runs the real `serve` command on the embedded default in a fresh interpreter, stops it
once it is fully wired, and fails if any of them was imported on the way.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.stub_upstream import ROOT

# Only when a section of the config asks for them (or another command runs).
UNUSED_BY_DEFAULT = (
    "h2",  # DoH over HTTP/2 (encrypted.listen_https)
    "h11",  # DoH over HTTP/1.1
    "hpack",
    "ctypes",  # nghttp2's HTTP/2 framing for DoH
    "resolver.transport.encrypted",  # DoT and DoH listeners
    "resolver.transport.doh",
    "resolver.transport.dot",
    "resolver.tls_check",  # certificate checks (cryptography.x509)
    "cryptography",  # x509 (TLS), ed25519 (audit ledger, coverage registry)
    "resolver.audit.ledger",  # audit.ledger
    "aiohttp",  # the console and block page
    "argon2",  # console accounts
    "resolver.console.runner",
    "prometheus_client",  # metrics.listen
    "requests",  # list downloads (lists.refresh_interval, `lachan lists update`)
    "resolver.lists.fetch",
    "redis",  # subscribers
    "pyrad",  # RADIUS
    "psycopg",  # the province collector
)

# Runs `lachan serve` as the console script does, and prints the loaded modules once every
# piece is wired (compose.Process.run starts serving), then stops cleanly.
SCRIPT = """
import json, sys
from resolver import compose

serve = compose.Process.run

async def run(self, ready=None):
    print(json.dumps(sorted(sys.modules)), flush=True)
    self.stopping.set()
    await serve(self, ready)

compose.Process.run = run
from resolver.cli import main
main(["serve", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:53", "--log-level", "warning"])
"""


def test_serving_the_embedded_default_imports_no_optional_part() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[0]))
    assert "resolver.pipeline" in loaded  # it did wire a serving process
    unwanted = [name for name in UNUSED_BY_DEFAULT if name in loaded]
    assert not unwanted, f"imported though the embedded default does not use them: {unwanted}"
