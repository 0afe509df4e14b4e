"""`make deb`'s package on this machine: install, check, serve as lachan, upgrade in place, purge.

It installs into the real machine as root (CI and the test container run as root), so it runs
once per session and always purges what it installed, even when a step fails. A lachan package
already installed here is purged first: this test owns the name on a test machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.stub_upstream import PING, free_port, raw_udp
from tests.tools import require

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(1500)  # the build compiles and vendors: minutes on 2 cores
CONFIG = Path("/etc/lachan/lachan.yaml")
KEY = Path("/etc/lachan/audit.key")
LEDGER = Path("/var/lib/lachan/ledger/ledger.jsonl")
# No PYTHONPATH and cwd "/" for every command: nothing may be imported from the checkout.
APT_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
APT_ENV["DEBIAN_FRONTEND"] = "noninteractive"
# Everything the package or its scripts put on the machine; none may survive a purge.
INSTALLED = [
    "/usr/bin/lachan", "/usr/lib/lachan", "/etc/lachan", "/var/lib/lachan",
    "/lib/systemd/system/lachan.service", "/lib/systemd/system/lachan-lists.timer",
    "/lib/systemd/system/lachan-report-push.timer", "/usr/share/man/man1/lachan.1.gz",
    "/usr/lib/sysusers.d/lachan.conf", "/usr/lib/tmpfiles.d/lachan.conf",
    "/usr/share/doc/lachan",
]  # fmt: skip


def _run(args: list[str], timeout: float = 300) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=APT_ENV, cwd="/"
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _installed() -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "lachan"], capture_output=True, text=True
    )
    return "install ok installed" in done.stdout


def _known() -> bool:
    """Installed, or removed with its config files left: something for a purge to do."""
    done = subprocess.run(["dpkg-query", "-W", "lachan"], capture_output=True, text=True)
    return done.returncode == 0


def _purge() -> None:
    if _known():
        _run(["apt-get", "purge", "-y", "-q", "lachan"])


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The package built by scripts/build-deb (what `make deb` runs); purged after the module."""
    if os.geteuid() != 0:
        pytest.fail("the .deb test installs packages: run it as root (CI does)", pytrace=False)
    require("dpkg-buildpackage")
    require("setpriv")
    out = tmp_path_factory.mktemp("deb")
    _run([str(ROOT / "scripts" / "build-deb"), str(out)], timeout=900)
    (package,) = out.glob("lachan_*.deb")
    _purge()
    had_account = _account_exists()
    try:
        yield package
    finally:
        _purge()
        # The package leaves the lachan account on purge, as Debian does; the test removes the
        # one it made, so the machine ends as it began.
        if not had_account and _account_exists():
            _run(["userdel", "lachan"])
            subprocess.run(["groupdel", "lachan"], capture_output=True)


def _account_exists() -> bool:
    return subprocess.run(["getent", "passwd", "lachan"], capture_output=True).returncode == 0


def _newer(deb: Path) -> Path:
    """The same package repacked as version 0.1.0+upgrade1, to upgrade to."""
    tree = deb.parent / "newer"
    _run(["dpkg-deb", "-R", str(deb), str(tree)])
    control = tree / "DEBIAN" / "control"
    text = control.read_text()
    assert "\nVersion: 0.1.0\n" in text
    control.write_text(text.replace("\nVersion: 0.1.0\n", "\nVersion: 0.1.0+upgrade1\n"))
    newer = deb.parent / "lachan_0.1.0+upgrade1_amd64.deb"
    _run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(newer)])
    return newer


def _version() -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "lachan"], capture_output=True, text=True
    )
    return done.stdout


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_install() -> None:
    assert Path("/usr/bin/lachan").resolve() == Path("/usr/lib/lachan/bin/lachan")
    # The key signs as the site: its own user only (lachan refuses a key open to group or others).
    assert KEY.stat().st_mode & 0o777 == 0o600 and KEY.owner() == "lachan"
    assert CONFIG.group() == "lachan" and Path("/etc/lachan/audit.pub").exists()
    for unit in ("lachan.service", "lachan-lists.service", "lachan-lists.timer",
                 "lachan-report-push.service", "lachan-report-push.timer"):  # fmt: skip
        text = Path("/lib/systemd/system", unit).read_text()
        docs = [w for line in text.splitlines() if line.startswith("Documentation=")
                for w in line.removeprefix("Documentation=").split()]  # fmt: skip
        assert docs and all(Path(d.removeprefix("file://")).is_file() for d in docs), docs
    out = _run(["/usr/bin/lachan", "check-config", str(CONFIG)])
    assert out.strip() == f"{CONFIG}: ok", out
    # The package runs its own copy under /usr/lib/lachan, with Debian's python3-yaml.
    code = "import resolver, yaml; print(resolver.__file__, yaml.__file__)"
    where = _run(["/usr/lib/lachan/bin/python3", "-c", code]).split()
    assert where[0].startswith("/usr/lib/lachan/lib/python3.11/site-packages/resolver/")
    assert where[1].startswith("/usr/lib/python3/dist-packages/")  # Debian's python3-yaml
    assert _vendored() == _locked()
    # The vendored extensions still load once stripped, and the PDF export works with Debian's
    # python3-pil and fonts; postinst compiled the byte code (prerm removes it).
    out = _run(["/usr/lib/lachan/bin/python3", "-c", _EXTENSIONS])
    assert out.split() == ["binary", "%PDF"], out
    assert list(Path("/usr/lib/lachan/lib/python3.11/site-packages/resolver").glob("__pycache__"))


_EXTENSIONS = """
import io, ahocorasick, aiohttp, argon2, hiredis, psycopg, pycares, uvloop, yarl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate
from PIL import Image as PILImage
from resolver.collector.exports import _fonts
Ed25519PrivateKey.generate().sign(b"x")
font, bold = _fonts()
picture = io.BytesIO()
PILImage.new("RGB", (4, 4)).save(picture, "PNG")
pdf = io.BytesIO()
SimpleDocTemplate(pdf).build([Paragraph("Sở Giáo dục", ParagraphStyle("p", fontName=font)),
                              Image(io.BytesIO(picture.getvalue()), 4, 4)])
print(psycopg.pq.__impl__, pdf.getvalue()[:4].decode())
"""


def _vendored() -> dict[str, str]:
    """Name and version of every package pip put in the private venv."""
    code = ("from importlib.metadata import distributions as d\n"
            "for x in d(path=[__import__('sysconfig').get_paths()['purelib']]):"
            " print(x.metadata['Name'], x.version)")  # fmt: skip
    lines = _run(["/usr/lib/lachan/bin/python3", "-c", code]).splitlines()
    return {_norm(name): version for name, version in (line.split() for line in lines)}


def _locked() -> dict[str, str]:
    """debian/requirements.txt (build-only pins removed from the package left out), and lachan."""
    text = (ROOT / "debian" / "requirements.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n.*?(#.*)?$", text, flags=re.M)
    locked = {_norm(name): version for name, version, note in pins if "build only" not in note}
    return locked | {"lachan": "0.1.0"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _serve_and_query(port: int) -> None:
    """`lachan serve` as the lachan user on a loopback port; the school profile answers."""
    # setpriv execs lachan itself (runuser would stay the parent and kill it on SIGTERM, before
    # it could record the open audit period).
    args = ["setpriv", "--reuid=lachan", "--regid=lachan", "--init-groups", "--"]
    args += ["env", "LACHAN_STATE_DIR=/var/lib/lachan"]
    args += ["/usr/bin/lachan", "serve", "--config", str(CONFIG), "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        args, cwd="/", env=APT_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    failure: BaseException | None = None
    try:
        deadline = time.monotonic() + 90
        while raw_udp(port, PING, timeout=0.2) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"lachan serve did not answer:\n{proc.communicate()[0].decode()}")
        status = dns.message.make_query("status.lachan.arpa", "TXT")
        reply = dns.query.udp(status, "127.0.0.1", port=port, timeout=5)
        assert '"profile=school"' in reply.to_text(), reply.to_text()
        blocked = dns.message.make_query("pornhub.com", "A", use_edns=0)
        reply = dns.query.udp(blocked, "127.0.0.1", port=port, timeout=5)
        assert reply.rcode() == dns.rcode.NXDOMAIN, reply.to_text()
        texts = [opt.text for opt in reply.options if opt.otype == 15]
        assert texts and "profile=school" in texts[0], reply.to_text()
    except (AssertionError, dns.exception.DNSException) as exc:
        failure = exc  # reported with the server's own output, which says why
    finally:
        proc.terminate()
        log = proc.communicate(timeout=30)[0].decode()
    assert failure is None, f"{failure!r}; lachan serve's output:\n{log}"
    assert proc.returncode == 0 and "Traceback" not in log, log


def test_the_deb_installs_serves_upgrades_in_place_and_purges_cleanly(deb: Path) -> None:
    _run(["apt-get", "install", "-y", "-q", str(deb)])
    _check_install()
    # The operator's edit of the conffile (a free metrics port here) must survive the upgrade.
    metrics = free_port(("127.0.0.1",))
    CONFIG.write_text(CONFIG.read_text().replace("127.0.0.1:9153", f"127.0.0.1:{metrics}"))
    _serve_and_query(free_port(("127.0.0.1",)))
    assert LEDGER.exists() and LEDGER.owner() == "lachan"  # SIGTERM records the open period
    kept = {path: _sha(path) for path in (CONFIG, KEY, LEDGER)}
    indexes = sorted(Path("/var/lib/lachan/index").iterdir())
    assert indexes, "serve compiled no index under /var/lib/lachan/index"

    # Over itself, then to a newer version (dpkg's upgrade path: old prerm, new postinst).
    for package in (deb, _newer(deb)):
        _run(["apt-get", "install", "-y", "-q", "--reinstall", str(package)])
        assert {path: _sha(path) for path in kept} == kept
        assert sorted(Path("/var/lib/lachan/index").iterdir()) == indexes
        _check_install()
    assert _version() == "0.1.0+upgrade1"
    _serve_and_query(free_port(("127.0.0.1",)))

    archive = deb.parent / "site.tar.gz"
    _run(["/usr/bin/lachan", "backup", str(archive)])  # --config defaults to the conffile

    _run(["apt-get", "purge", "-y", "-q", "lachan"])
    assert not _installed()
    assert [path for path in INSTALLED if os.path.lexists(path)] == []

    # A rebuilt server: a fresh install makes a new key; restore brings the site's one back.
    _run(["apt-get", "install", "-y", "-q", str(deb)])
    assert _sha(KEY) != kept[KEY]
    _run(["/usr/bin/lachan", "restore", "--force", str(archive)])
    assert {path: _sha(path) for path in (CONFIG, KEY)} == {p: kept[p] for p in (CONFIG, KEY)}
    assert KEY.group() == "lachan" and LEDGER.owner() == "lachan"
    _run(["apt-get", "purge", "-y", "-q", "lachan"])
    assert [path for path in INSTALLED if os.path.lexists(path)] == []


def test_lintian_finds_no_error_or_warning_in_the_deb(deb: Path) -> None:
    """What cannot be fixed is overridden in debian/lachan.lintian-overrides, each with its reason;
    an override that no longer matches anything fails too, so the list stays true."""
    require("lintian")
    done = subprocess.run(
        ["lintian", "--info", "--fail-on", "error,warning", str(deb)],
        capture_output=True, text=True, timeout=600, cwd="/",
    )  # fmt: skip
    tags = [line for line in done.stdout.splitlines()
            if line[:2] in ("E:", "W:") or "unused-override" in line
            or "mismatched-override" in line]  # fmt: skip
    assert done.returncode == 0 and tags == [], done.stdout + done.stderr


# setup.cfg's requirements that Debian 12 provides, and the package each comes from.
FROM_DEBIAN = {"pyyaml": "python3-yaml", "click": "python3-click"}


def test_the_lock_pins_every_requirement_that_debian_does_not_provide() -> None:
    """Checked without building: a requirement added to setup.cfg without running
    scripts/lock-deb-requirements fails here (the build itself would fail at pip install)."""
    from configparser import ConfigParser

    from packaging.requirements import Requirement

    setup = ConfigParser()
    setup.read(ROOT / "setup.cfg")
    wanted = [Requirement(line) for line in setup["options"]["install_requires"].split("\n")
              if line.strip()]  # fmt: skip
    locked, control = _locked(), (ROOT / "debian" / "control").read_text()
    for req in wanted:
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = _norm(req.name)
        if name in FROM_DEBIAN:
            assert f"         {FROM_DEBIAN[name]},\n" in control, name
            continue
        assert name in locked and req.specifier.contains(locked[name]), (str(req), locked.get(name))
