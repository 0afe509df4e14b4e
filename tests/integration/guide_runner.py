"""Run the shell and YAML blocks of README.md and docs/ as written, under a temporary root.

A fenced ``sh`` block runs line by line in bash; a ``yaml`` block with keys of lachan.yaml is
written where the paragraph before it says (``Write `/etc/lachan/lachan.yaml`:``, or ``Add
to …`` to append; the guide then runs check-config itself), any other one is checked by
``lachan check-config --files-only``, over the guide's ``/etc/lachan/lachan.yaml`` once it has
one (the block's keys replace the file's, as a reader changing that file does). A block
right after ``<!-- not-run: REASON -->`` is not run. The only changes made to what the guides
say are these substitutions, applied to every block before it runs:

- ``/etc/lachan`` and ``/var/lib/lachan`` → the same paths under the temporary root, which
  ``systemd-sysusers --root`` and ``systemd-tmpfiles --root --create`` prepare from
  ``systemd/`` as the package's install does (and, for a guide that installs the ``.deb``,
  ``lachan audit keygen`` makes the site's key there, as its postinst does);
- the listen addresses ``0.0.0.0:53``, ``[::]:53``, ``127.0.0.1:1053``, ``[::1]:1053`` (and
  ``-p 1053``) → a free loopback port; the metrics port ``9153`` → another free one; the
  console's ``192.168.10.53:8080``, its block page's ``:80`` and ``tls_refuse_port: 443`` →
  three more;
- the public resolvers ``1.1.1.1`` and ``2606:4700:4700::1111`` → the test's stub upstream
  on loopback (no test reaches the internet);
- ``dig`` without a server (a student's device, whose DHCP names lachan) → ``dig @127.0.0.1
  -p PORT``; and ``192.168.10.53`` (the guide's lachan machine) → ``127.0.0.1``, as is the
  README's example listener ``10.0.0.53`` (which a loopback listen address cannot receive);
- certbot's certificate and key in a ``tls:`` section → a test certificate for the same names;
- ``systemctl enable --now|start|restart lachan.service`` → run the unit's ``ExecStart=`` with
  its ``Environment=`` (stopped with SIGTERM, as systemd does); ``systemctl status`` → the
  process must be running; ``systemctl enable`` alone (at boot) does nothing now;
  ``lachan-lists.timer`` is not started (it would download lists).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.stub_upstream import PING, ROOT, free_port, raw_udp

LACHAN_KEYS = {
    "site", "listen", "upstreams", "upstream", "cache", "server", "tcp", "lists", "policies",
    "clients", "acl", "ratelimit", "metrics", "querylog", "audit", "workers",
    "listen_tls", "listen_https", "tls", "devices", "require_device_id",
    "console", "subscribers",
}  # fmt: skip
_FENCE = re.compile(r"^( *)```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not-run: (.+\S) -->$")
_TARGET = re.compile(r"(Write|Add to)\s+`(/[^`]+\.yaml)`:\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, text (indent removed), line, and what precedes it."""

    lang: str
    text: str
    line: int
    not_run: str | None = None
    target: tuple[str, str] | None = None  # (verb, path) when the paragraph names a file


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, lang, start = len(match.group(1)), match.group(2), i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        before = [text.strip() for text in lines[max(0, start - 4) : start] if text.strip()]
        marker = _NOT_RUN.match(before[-1]) if before else None
        paragraph = " ".join(before[:-1] if marker else before)
        target = _TARGET.search(paragraph)
        found.append(Block(lang, "".join(f"{b}\n" for b in body), start + 1,
                           marker.group(1) if marker else None,
                           (target.group(1), target.group(2)) if target else None))  # fmt: skip
        i += 1
    return found


def is_lachan_yaml(block: Block) -> bool:
    data = yaml.safe_load(block.text)
    return block.lang == "yaml" and isinstance(data, dict) and set(data) <= LACHAN_KEYS


@dataclass
class GuideRun:
    """One reader following one document on a temporary root."""

    root: Path
    stub: str  # HOST:PORT of the stub upstream
    dns_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=lambda: free_port(("127.0.0.1",)))
    console_ports: tuple[int, int, int] = field(  # console, block page, HTTPS refuser
        default_factory=lambda: tuple(free_port(("127.0.0.1",)) for _ in range(3))  # type: ignore[return-value]
    )
    output: list[str] = field(default_factory=list)
    server: subprocess.Popen[bytes] | None = None
    from_deb: bool = False  # the guide installs the .deb, whose postinst makes the audit key

    def __post_init__(self) -> None:
        (self.root / "etc").mkdir(exist_ok=True)  # sysusers writes etc/passwd and etc/group
        for tool, unit in (("systemd-sysusers", "lachan.sysusers"),
                           ("systemd-tmpfiles", "lachan.tmpfiles")):  # fmt: skip
            args = [tool, f"--root={self.root}", str(ROOT / "systemd" / unit)]
            if tool == "systemd-tmpfiles":
                args.insert(2, "--create")
            subprocess.run(args, check=True, capture_output=True, timeout=60)
        if self.from_deb:  # as debian/lachan.postinst does on a first install
            keygen = ["lachan", "audit", "keygen", "--out", f"{self.root}/etc/lachan"]
            subprocess.run(keygen, check=True, capture_output=True, timeout=60, env=self.env())

    def substitute(self, text: str) -> str:
        host, port = self.stub.rsplit(":", 1)
        pairs = [
            ("/etc/lachan", f"{self.root}/etc/lachan"),
            ("/var/lib/lachan", f"{self.root}/var/lib/lachan"),
            ('"0.0.0.0:53"', f'"127.0.0.1:{self.dns_port}"'),
            ('"[::]:53"', f'"[::1]:{self.dns_port}"'),
            ("127.0.0.1:1053", f"127.0.0.1:{self.dns_port}"),
            ("[::1]:1053", f"[::1]:{self.dns_port}"),
            ("-p 1053", f"-p {self.dns_port}"),
            ("127.0.0.1:9153", f"127.0.0.1:{self.metrics_port}"),
            ("{address: 1.1.1.1}", f"{{address: {host}, port: {port}}}"),
            ('{address: "2606:4700:4700::1111", port: 53}', f"{{address: {host}, port: {port}}}"),
            ("192.168.10.53:8080", f"127.0.0.1:{self.console_ports[0]}"),
            ("192.168.10.53:80", f"127.0.0.1:{self.console_ports[1]}"),
            ("tls_refuse_port: 443", f"tls_refuse_port: {self.console_ports[2]}"),
            ("192.168.10.53", "127.0.0.1"),
            ('"10.0.0.53": school', '"127.0.0.1": school'),
        ]
        for old, new in pairs:
            text = text.replace(old, new)
        return re.sub(r"^dig (?!@)", f"dig @127.0.0.1 -p {self.dns_port} ", text, flags=re.M)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        for value in unit_values("lachan.service", "Environment"):
            key, _, setting = self.substitute(value).partition("=")
            env[key] = setting
        return env

    def run_block(self, block: Block) -> None:
        if block.lang == "yaml":
            self._yaml(block)
            return
        for line in logical_lines(block.text):
            words = shlex.split(line, comments=True)
            if not words:
                continue
            if words[0] == "systemctl":
                self._systemctl(words[1:], block)
                continue
            result = subprocess.run(["bash", "-c", self.substitute(line)], capture_output=True,
                                    text=True, timeout=120, cwd=ROOT, env=self.env())  # fmt: skip
            assert result.returncode == 0, f"line {block.line}: {line}\n{result.stderr}"
            self.output.append(result.stdout)

    def _yaml(self, block: Block) -> None:
        text = self.substitute(block.text)
        if block.target is not None:
            path = Path(self.substitute(block.target[1]))
            with path.open("a" if block.target[0] == "Add to" else "w", encoding="utf-8") as f:
                f.write(text)
            return  # the guide checks it itself once it has made the files it names
        text = self._with_test_certificate(text, block.line)
        path = self.root / f"block-{block.line}.yaml"
        config = Path(self.substitute("/etc/lachan/lachan.yaml"))
        if config.is_file():  # a change to the guide's config: its keys replace the file's
            merged = {**(yaml.safe_load(config.read_text()) or {}), **yaml.safe_load(text)}
            path = config.with_name(f"block-{block.line}.yaml")  # relative paths as the file's
            text = yaml.safe_dump(merged, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        result = subprocess.run(["lachan", "check-config", "--files-only", str(path)],
                                capture_output=True, text=True, timeout=60, env=self.env())  # fmt: skip
        assert result.returncode == 0, f"yaml block at line {block.line}:\n{result.stderr}"

    def _with_test_certificate(self, text: str, line: int) -> str:
        """certbot's paths in a ``tls:`` section → a test certificate for the same names
        (no test has the site's real certificate)."""
        tls = (yaml.safe_load(text) or {}).get("tls")
        if not tls:
            return text
        from tls_helpers import make_pki

        name = tls["server_name"]
        pki = make_pki(self.root / f"pki-{line}", names=(name, "*." + name))
        return text.replace(tls["cert"], str(pki.cert)).replace(tls["key"], str(pki.key))

    def _systemctl(self, args: list[str], block: Block) -> None:
        verb, units = args[0], [a for a in args[1:] if not a.startswith("-")]
        assert set(units) <= {"lachan.service", "lachan-lists.timer"}, (block.line, args)
        if "lachan.service" not in units:
            return
        if verb == "enable" and "--now" not in args:
            return  # what starts at boot: nothing to run now
        if verb == "status":
            assert self.server is not None and self.server.poll() is None, "lachan is not running"
            self.output.append("active (running)\n")
        elif verb in ("start", "restart") or (verb == "enable" and "--now" in args):
            self.stop()
            self.start()
        else:
            raise AssertionError(f"line {block.line}: systemctl {verb} is not understood")

    def start_make_serve(self) -> None:
        """What `make serve` runs (the embedded default), on the test's port and stub."""
        self.start(f"lachan serve --listen 127.0.0.1:1053 --listen [::1]:1053 "
                   f"--upstream {self.stub}")  # fmt: skip

    def start(self, command: str | None = None, timeout: float = 180.0) -> None:
        """The unit's ExecStart (or ``command``), once it answers on the DNS port."""
        if command is None:
            (command,) = unit_values("lachan.service", "ExecStart")
        with (self.root / "lachan.log").open("ab") as log:
            self.server = subprocess.Popen(shlex.split(self.substitute(command)), stdout=log,
                                           stderr=log, env=self.env(), cwd=ROOT)  # fmt: skip
        deadline = time.monotonic() + timeout  # the first start compiles the bundled lists
        while time.monotonic() < deadline:
            assert self.server.poll() is None, (self.root / "lachan.log").read_text()
            if raw_udp(self.dns_port, PING, timeout=0.2) is not None:
                return
            time.sleep(0.2)
        raise AssertionError("lachan did not answer in time")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=30)
        self.server = None


def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def unit_values(unit: str, key: str) -> list[str]:
    text = (ROOT / "systemd" / unit).read_text(encoding="utf-8")
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]
