"""The sdist builds a wheel (C extension included) that serves, lists and explains when installed.

One module-scoped build: sdist from the checkout, wheel from the sdist, installed non-editable
into a fresh venv in a temp dir. The venv reaches the dependencies through a .pth line naming
the test venv's site-packages (offline, no index), appended after its own site-packages so the
installed ``resolver`` wins over the checkout's editable one.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.stub_upstream import PING, free_port, raw_udp

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a venv with the wheel built from the sdist installed in it."""
    work = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(work), str(ROOT)],
        work,
    )
    (sdist,) = work.glob("lachan-*.tar.gz")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run(
        pip + ["wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(work), str(sdist)],
        work,
    )
    (wheel,) = work.glob("lachan-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work)
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    (purelib / "zz-test-deps.pth").write_text(site.getsitepackages()[0] + "\n", encoding="utf-8")
    target = ["--python", str(venv / "bin" / "python")]
    _run(pip + target + ["install", "-q", "--no-deps", "--no-index", str(wheel)], work)
    return venv / "bin"


def test_the_wheel_installs_the_package_and_no_top_level_module(installed: Path) -> None:
    code = "import resolver, resolver.cli, resolver._nametable; print(resolver.__file__)"
    where = _run([str(installed / "python"), "-c", code], installed)
    assert where.startswith(str(installed.parent)), where
    purelib = Path(where).parents[1]
    assert not (purelib / "cli.py").exists()
    assert sorted(p.name for p in purelib.glob("*.py")) == []


def test_the_installed_explain_blocks_a_bundled_list_name(installed: Path) -> None:
    out = _run([str(installed / "lachan"), "explain", "pornhub.com"], installed, _env(installed))
    assert "decision: block (reason category, category adult)" in out, out
    assert "shadowwhisperer-adult" in out, out


def test_the_installed_lists_command_reads_the_bundled_catalogue(installed: Path) -> None:
    out = _run([str(installed / "lachan"), "lists", "stats"], installed, _env(installed))
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert rows["shadowwhisperer-adult"][1] == "adult", out
    assert int(rows["shadowwhisperer-adult"][2]) > 1000, out


@pytest.fixture
def served(installed: Path) -> Iterator[int]:
    """``lachan serve`` from the installed venv with the embedded default, on a free port."""
    port = free_port(("127.0.0.1",))
    args = [str(installed / "lachan"), "serve", "--listen", f"127.0.0.1:{port}"]
    log = installed.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=installed, env=_env(installed), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while raw_udp(port, PING, timeout=0.2) is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_installed_server_blocks_a_bundled_list_name(served: int) -> None:
    query = dns.message.make_query("pornhub.com", "A", use_edns=0)
    reply = dns.query.udp(query, "127.0.0.1", port=served, timeout=5)
    # The embedded default's profile (under16) answers a category block NXDOMAIN with EDE 17.
    assert reply.rcode() == dns.rcode.NXDOMAIN, reply.to_text()
    assert any(opt.otype == 15 and opt.code == 17 for opt in reply.options), reply.to_text()


def _env(installed: Path) -> dict[str, str]:
    """No checkout on the path; compiled lists in the temp dir, not the user's cache."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["LACHAN_STATE_DIR"] = str(installed.parent / "state")
    return env
