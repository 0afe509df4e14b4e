"""Tests for resolver/config.py and config_read.py: every problem is one line naming the file
and key path; flags override; resolv.conf skips our own listeners."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver import config
from resolver.config import Listener, load, parse
from resolver.config_read import split_host_port
from resolver.config_source import nameservers, resolve_upstreams, with_overrides
from resolver.errors import ConfigError
from resolver.upstream import UpstreamAddress


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "lachan.yaml")
    return caught.value.problems


def test_embedded_default_loads() -> None:
    cfg = load()
    assert cfg.listeners == (Listener("127.0.0.1", 1053), Listener("::1", 1053))
    assert cfg.upstreams_from_resolv_conf and cfg.cache.stale_window > 0


def test_full_config() -> None:
    cfg = parse(
        """
listen: ["127.0.0.1:5353", "[::1]:5353"]
upstreams: ["192.0.2.1", "[2001:db8::1]:5300", {address: 192.0.2.2, port: 54}]
upstream: {timeout: 0.5, tcp_timeout: 2, attempts: 3, udp_size: 1400}
cache: {size: 10, min_ttl: 5, max_ttl: 600, negative_max_ttl: 60, serve_stale: true, stale_window: 120}
server: {udp_size: 1400, max_inflight: 100}
tcp: {max_connections: 7, idle_timeout: 2.5}
""",
        "lachan.yaml",
    )
    assert cfg.upstreams == (
        UpstreamAddress("192.0.2.1", 53),
        UpstreamAddress("2001:db8::1", 5300),
        UpstreamAddress("192.0.2.2", 54),
    )
    assert (cfg.forward.attempt_timeout, cfg.forward.attempts) == (0.5, 3)
    assert (cfg.cache.capacity, cfg.cache.stale_window, cfg.cache.min_ttl) == (10, 120, 5)
    assert (cfg.tcp.max_connections, cfg.tcp.idle_timeout) == (7, 2.5)
    assert not cfg.upstreams_from_resolv_conf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("upstreams: [x]", "lachan.yaml: upstreams[0]: not an IP address: 'x'"),
        (
            "upstreams: [1.2.3.4, {address: x}]",
            "lachan.yaml: upstreams[1].address: not an IP address: 'x'",
        ),
        ("upstreams: [{port: 5}]", "lachan.yaml: upstreams[0]: address: missing"),
        (
            "upstreams: [{address: 1.2.3.4, port: 70000}]",
            "lachan.yaml: upstreams[0].port: must be between 1 and 65535: 70000",
        ),
        (
            "upstreams: 1.2.3.4",
            "lachan.yaml: upstreams: must be a list of upstreams or the word 'resolv.conf'",
        ),
        (
            "listen: ['127.0.0.1']",
            "lachan.yaml: listen[0]: missing port in '127.0.0.1' (HOST:PORT, IPv6 as [ADDR]:PORT)",
        ),
        (
            "listen: [5353]",
            "lachan.yaml: listen[0]: must be a string HOST:PORT (IPv6 as [ADDR]:PORT)",
        ),
        ("listen: []", "lachan.yaml: listen: must list at least one address"),
        ("cache: {size: big}", "lachan.yaml: cache.size: must be an integer, not a string: 'big'"),
        (
            "cache: {serve_stale: 1}",
            "lachan.yaml: cache.serve_stale: must be a boolean, not a int: 1",
        ),
        ("cache: {max_ttl: 0}", "lachan.yaml: cache.max_ttl: must be between 1 and 604800: 0"),
        ("cache: []", "lachan.yaml: cache: must be a mapping, not a list"),
        (
            "tcp: {max_connections: true}",
            "lachan.yaml: tcp.max_connections: must be an integer, not a boolean",
        ),
        (
            "tcp: {idle: 3}",
            "lachan.yaml: tcp.idle: unknown key (known: idle_timeout, max_connections, max_inflight_per_connection, output_budget_mib, output_buffer_kib)",
        ),
        (
            "upstream: {timeout: 0}",
            "lachan.yaml: upstream.timeout: must be between 0.05 and 30: 0.0",
        ),
        ("site: {kind: mall}", "lachan.yaml: site.kind: must be one of school, isp, other: 'mall'"),
        ("acl: {alow: []}", "lachan.yaml: acl.alow: unknown key (did you mean allow? known: "
                            "action, allow, deny)"),  # fmt: skip
        (
            "ratelimit: {ipv44: []}",
            "lachan.yaml: ratelimit.ipv44: unknown key (did you mean ipv4? known: action, any, "
            "ipv4, ipv6, max_buckets, slip, sweep_interval, tcp)",
        ),
        ("- a list", "lachan.yaml: the top level must be a mapping"),
        (
            "cache: {min_ttl: 600, max_ttl: 60}",
            "lachan.yaml: cache.min_ttl: 600 is above cache.max_ttl 60",
        ),
        (
            "audit: {collector: 'collector.example.vn'}",
            "lachan.yaml: audit.collector: not an http(s) URL: 'collector.example.vn'",
        ),
        ("ratelimit: []", "lachan.yaml: ratelimit: must be a mapping, not a list"),
        (
            "listen: ['127.0.0.1:53']\ncache: {}\nlisten: ['127.0.0.1:5353']",
            "lachan.yaml: line 3: not valid YAML: key 'listen' given twice (first on line 1)",
        ),
        (
            "cache: {size: 10, size: 20}",
            "lachan.yaml: line 1: not valid YAML: key 'size' given twice (first on line 1)",
        ),
        (
            "cache: {size: [1",
            "lachan.yaml: line 1: not valid YAML: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_problems_are_one_line_with_file_and_key(text: str, expected: str) -> None:
    found = problems(text)
    assert expected in found, found
    assert all("\n" not in p and p.startswith("lachan.yaml: ") for p in found)


def test_all_problems_are_collected() -> None:
    found = problems("listen: [x]\ncache: {size: -1}\ntcp: {max_connections: 0}")
    assert len(found) == 4  # listen[0], then "listen: must list at least one", cache, tcp


def test_unknown_top_level_key() -> None:
    (found,) = problems("colour: blue")
    assert found.startswith("lachan.yaml: colour: unknown key (known: ")


def test_an_empty_upstream_list_is_rejected() -> None:
    # Without upstreams every cache miss would fail; say so when loading, not per query.
    assert problems("upstreams: []") == ["lachan.yaml: upstreams: must list at least one upstream"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "missing.yaml")
    assert caught.value.problems == [
        f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"
    ]


def test_a_config_saved_in_a_windows_code_page_is_one_line(tmp_path: Path) -> None:
    """Notepad's "ANSI" on a Vietnamese Windows is cp1258: a comment like '# Thuê bao'."""
    path = tmp_path / "lachan.yaml"
    path.write_bytes("upstreams: ['1.1.1.1']\n# Thuê bao\n".encode("cp1258"))
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.problems == [f"{path}: line 2: not UTF-8 text (save the file as UTF-8)"]


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("1.2.3.4:53", None, ("1.2.3.4", 53)),
        ("[::1]:5353", None, ("::1", 5353)),
        ("::1", 53, ("::1", 53)),
        ("1.2.3.4", 53, ("1.2.3.4", 53)),
        (" 10.0.0.1:1 ", None, ("10.0.0.1", 1)),
    ],
)
def test_split_host_port(text: str, default: int | None, expected: tuple[str, int]) -> None:
    assert split_host_port(text, default) == expected


@pytest.mark.parametrize(
    "bad", ["1.2.3.4", "[::1", "[::1]x", "host:53", "1.2.3.4:99999", "1.2.3.4:-1", ":53"]
)
def test_split_host_port_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(bad, None)


def test_flag_overrides_and_bad_flags() -> None:
    cfg = with_overrides(load(), ("127.0.0.1:9", "[::1]:9"), ("192.0.2.1:5300",))
    assert cfg.listeners == (Listener("127.0.0.1", 9), Listener("::1", 9))
    assert cfg.upstreams == (UpstreamAddress("192.0.2.1", 5300),)
    assert not cfg.upstreams_from_resolv_conf
    with pytest.raises(ConfigError) as caught:
        with_overrides(load(), ("nonsense",), ("1.2.3.4:x",))
    assert caught.value.problems == [
        "--listen nonsense: not an IP address: 'nonsense'",
        "--upstream 1.2.3.4:x: bad port in '1.2.3.4:x'",
    ]


def test_nameservers_parsing() -> None:
    text = "# comment\nnameserver 10.0.0.1\nnameserver fe80::1%eth0 ; zone\nnameserver bogus\nsearch x\n"
    assert nameservers(text) == ["10.0.0.1", "fe80::1"]


def test_resolv_conf_skips_our_own_listeners(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\nnameserver 192.0.2.53\n")
    cfg = config.parse("listen: ['0.0.0.0:53']", "t.yaml")
    assert resolve_upstreams(cfg, resolv).upstreams == (UpstreamAddress("192.0.2.53", 53),)
    resolv.write_text("nameserver 127.0.0.1\n")
    with pytest.raises(ConfigError):
        resolve_upstreams(cfg, resolv)
    with pytest.raises(ConfigError):
        resolve_upstreams(cfg, tmp_path / "absent")
