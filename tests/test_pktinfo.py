"""Tests for resolver/transport/pktinfo.py: on a wildcard bind, clients.listeners match the
address a query was sent to, over UDP and TCP, and the answer comes from that address; and
check-config names a listener mapping no query can match (issue 11, finding 6)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from resolver import config
from resolver.state import load_policies
from resolver.transport import pktinfo

ROOT = Path(__file__).resolve().parents[1]


def test_a_wildcard_bind_maps_profiles_by_the_destination_address() -> None:
    # In a network namespace of its own, 0.0.0.0 and [::] reach loopback only.
    command = f"ip link set lo up && exec {sys.executable} tests/pktinfo_probe.py"
    run = subprocess.run(
        ["unshare", "--net", "--map-root-user", "sh", "-c", command],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    probe = json.loads(run.stdout.strip().splitlines()[-1])
    results, port = probe["results"], probe["port"]
    assert results["udp 127.0.0.1"] == {"from": "127.0.0.1", "port": port, "answer": ["192.0.2.1"]}
    assert results["udp 127.0.0.3"] == {"from": "127.0.0.3", "port": port, "answer": []}
    assert results["udp ::1"] == {"from": "::1", "port": port, "answer": []}
    assert results["tcp 127.0.0.1"] == {"answer": ["192.0.2.1"]}
    assert results["tcp 127.0.0.3"] == {"answer": []} and results["tcp ::1"] == {"answer": []}


def test_the_destination_is_read_from_ipv4_and_ipv6_pktinfo() -> None:
    v4 = (0).to_bytes(4, "little") + socket.inet_aton("127.0.0.1") + socket.inet_aton("127.0.0.3")
    got = pktinfo.parse_destination(socket.AF_INET, [(socket.IPPROTO_IP, pktinfo.IP_PKTINFO, v4)])  # type: ignore[list-item]
    assert got == ("127.0.0.3", b"\0\0\0\0" + socket.inet_aton("127.0.0.3") + b"\0\0\0\0")
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::53") + (2).to_bytes(4, "little")
    got = pktinfo.parse_destination(
        socket.AF_INET6, [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, v6)]
    )
    assert got == ("2001:db8::53", v6)
    assert pktinfo.parse_destination(socket.AF_INET, []) == ("", b"")


def _check(tmp_path: Path, listen: str, listeners: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "site.yaml"
    path.write_text(
        f"listen: {listen}\nclients: {{default: under16, listeners: {listeners}}}\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "resolver.cli", "check-config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_check_config_accepts_listeners_on_a_wildcard_bind(tmp_path: Path) -> None:
    run = _check(tmp_path, '["0.0.0.0:53", "[::]:53"]', '{"10.0.0.53": school, "::1": school}')
    assert run.returncode == 0 and run.stdout.strip().endswith(": ok"), run.stderr


def test_check_config_names_a_listener_no_listen_address_receives(tmp_path: Path) -> None:
    run = _check(tmp_path, '["127.0.0.1:53"]', '{"10.0.0.53": school, "127.0.0.1:5353": school}')
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert any("site.yaml: clients.listeners.10.0.0.53: no listen" in line for line in lines)
    assert any("clients.listeners.127.0.0.1:5353: no listen" in line for line in lines)


def test_check_config_says_when_a_wildcard_cannot_tell_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        'listen: ["0.0.0.0:53"]\nclients: {default: under16, listeners: {"10.0.0.53": school}}\n',
        encoding="utf-8",
    )
    cfg = config.load(path)
    _, clients, _ = load_policies(cfg)
    assert pktinfo.mapping_problems(cfg.listeners, clients, cfg.source) == []
    monkeypatch.setattr(pktinfo, "IP_PKTINFO", None)  # a platform without IP_PKTINFO
    [problem] = pktinfo.mapping_problems(cfg.listeners, clients, cfg.source)
    assert problem.endswith(
        "cannot tell a query's destination address: listen on the address itself"
    )
    assert "site.yaml: clients.listeners.10.0.0.53:" in problem


def test_a_reload_that_adds_listener_profiles_names_the_wildcards_needing_a_restart(
    tmp_path: Path,
) -> None:
    from resolver.app import build_resolver
    from resolver.state import build_state
    from resolver.stats import Stats
    from resolver.transport.udp import UdpListener

    path = tmp_path / "site.yaml"
    path.write_text(
        'lists: {enabled: false}\nclients: {default: under16, listeners: {"10.0.0.53": school}}\n',
        encoding="utf-8",
    )
    cfg = config.load(path)
    resolver = build_resolver(cfg, build_state(cfg), Stats())
    plain = [UdpListener(resolver, ("0.0.0.0", 53)), UdpListener(resolver, ("127.0.0.1", 53))]
    _, clients, _ = load_policies(cfg)
    assert pktinfo.blind_wildcards(plain, clients) == ["0.0.0.0:53"]
    _, unmapped, _ = load_policies(config.parse("lists: {enabled: false}\n", "other.yaml"))
    assert pktinfo.blind_wildcards(plain, unmapped) == []
    resolver.close()
