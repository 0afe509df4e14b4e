"""unbound as a reference forwarder on a free loopback port, forwarding to the test stub.

Configured as close to lachan's role as unbound allows: iterator only (no validator, no
cache tricks), forwarding "." to the stub, .test not treated as a special-use local zone.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.stub_upstream import PING, free_port, raw_udp
from tests.tools import require

CONFIG = """server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  do-not-query-localhost: no
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow_snoop  # RD=0 queries answered from the cache
  username: ""
  chroot: ""
  directory: "{workdir}"
  use-syslog: no
  logfile: ""
  pidfile: "{workdir}/unbound.pid"
  num-threads: 1
  verbosity: 0
  qname-minimisation: no
  minimal-responses: no
  local-zone: "test." nodefault
  edns-buffer-size: 1232
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@{upstream}
remote-control:
  control-enable: no
"""


class Unbound:
    """``unbound -d`` as a subprocess; ``port`` answers on 127.0.0.1 once started."""

    def __init__(self, workdir: Path, upstream_port: int) -> None:
        self.workdir = workdir
        self.port = free_port(("127.0.0.1",))
        self.conf = workdir / "unbound.conf"
        self.conf.write_text(CONFIG.format(port=self.port, workdir=workdir, upstream=upstream_port))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Unbound:
        log = (self.workdir / "unbound.log").open("wb")
        self.process = subprocess.Popen(
            [require("unbound"), "-d", "-c", str(self.conf)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "unbound.log").read_text())
            if raw_udp(self.port, PING, timeout=0.1) is not None:
                return self
        raise RuntimeError("unbound did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)
