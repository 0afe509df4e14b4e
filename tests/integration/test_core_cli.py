"""The command line as an operator meets it: check-config (exit 1) and serve (exit 2) fail
with one clear line, never a traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.conftest import LachanFactory
from tests.stub_upstream import ROOT, free_port, lachan_command


def run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lachan_command() + list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == (2 if "serve" in result.args else 1), result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert sorted(lines) == sorted(expected)


def test_check_config_ok(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    port = free_port(("127.0.0.1",))  # serve needs an address to answer on
    path.write_text(f"listen: ['127.0.0.1:{port}']\nupstreams: ['192.0.2.1']\n"
                    "tcp: {max_connections: 5}\n")  # fmt: skip
    result = run("check-config", str(path))
    assert result.returncode == 0 and result.stdout.strip() == f"{path}: ok"


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("upstreams: [x, {address: 1.2.3.4, port: 0}]\ncache: {size: many}\n")
    assert_one_line_failure(
        run("check-config", str(path)),
        f"{path}: upstreams[0]: not an IP address: 'x'",
        f"{path}: upstreams[1].port: must be between 1 and 65535: 0",
        f"{path}: cache.size: must be an integer, not a string: 'many'",
    )


def test_check_config_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("cache:\n  size: [1,\n")
    result = run("check-config", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}: line ") and "not valid YAML" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = tmp_path / "absent.yaml"
    assert_one_line_failure(
        run("check-config", str(missing)), f"{missing}: cannot read: No such file or directory"
    )


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("bogus", "--listen bogus: not an IP address: 'bogus'"),
        (
            "127.0.0.1",
            "--listen 127.0.0.1: missing port in '127.0.0.1' (HOST:PORT, IPv6 as [ADDR]:PORT)",
        ),
        ("[::1", "--listen [::1: missing ']' in '[::1'"),
        ("127.0.0.1:70000", "--listen 127.0.0.1:70000: bad port in '127.0.0.1:70000'"),
    ],
)
def test_serve_bad_listen_value(flag: str, expected: str) -> None:
    assert_one_line_failure(run("serve", "--listen", flag, "--upstream", "127.0.0.1"), expected)


def test_serve_unbindable_or_busy_address() -> None:
    result = run("serve", "--listen", "192.0.2.1:53", "--upstream", "127.0.0.1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot listen on 192.0.2.1:53 (UDP)" in result.stderr
    port = free_port(("127.0.0.1",))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", port))
        result = run("serve", "--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"--listen: 127.0.0.1:{port} (UDP) is already in use")


def test_empty_upstream_list_is_refused_or_answers_servfail(
    lachan: LachanFactory, tmp_path: Path
) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("upstreams: []\n")
    result = run("check-config", str(path))
    if result.returncode == 1:
        assert "upstreams" in result.stderr and "Traceback" not in result.stderr
        return
    server = lachan(config="upstreams: []\n", upstreams=[], expect_errors=True)
    reply = dns.query.udp(
        dns.message.make_query("www.example.test", "A"), "127.0.0.1", port=server.port, timeout=3
    )
    assert reply.rcode() == dns.rcode.SERVFAIL
