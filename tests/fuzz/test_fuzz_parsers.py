"""Property tests (hypothesis) of the input parsers: PROXY v2, ECS and every list format.

parse_proxy_v2 raises only ProxyV2Error and round-trips build_proxy_v2; parse_ecs raises only
EcsError and round-trips any network; the list parsers never raise, report every rejected line
with its number and text, and emit only normalised names.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resolver.lists.names import MAX_NAME, normalise
from resolver.lists.parsers import FORMATS, parse, parse_domains
from resolver.lists.rules import ParseResult
from resolver.policy.clients import EcsError, parse_ecs
from resolver.proxyv2 import SIGNATURE, ProxyHeader, ProxyV2Error, build_proxy_v2, parse_proxy_v2

SETTINGS = settings(max_examples=400, deadline=500, suppress_health_check=[HealthCheck.too_slow])

# -- PROXY v2 ---------------------------------------------------------------------------------
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


@st.composite
def endpoints(draw: st.DrawFn) -> tuple[tuple[str, int], tuple[str, int]]:
    """A source and destination of the same family, as a front end would send them."""
    addresses = draw(st.sampled_from([ipv4, ipv6]))
    return (draw(addresses), draw(ports)), (draw(addresses), draw(ports))


@st.composite
def proxy_bytes(draw: st.DrawFn) -> bytes:
    """Signature-led bytes (so parsing goes past the first check) or a mutated valid header."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=64))
    if kind == 1:
        head = bytes([draw(st.integers(0, 255)), draw(st.integers(0, 255))])
        size = draw(st.integers(0, 300))
        body = draw(st.binary(max_size=300))
        return SIGNATURE + head + size.to_bytes(2, "big") + body
    src, dst = draw(endpoints())
    data = bytearray(build_proxy_v2(src, dst, draw(st.booleans()), draw(st.binary(max_size=20))))
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut])


@SETTINGS
@given(proxy_bytes())
@example(SIGNATURE[:5])
@example(SIGNATURE + b"\x21\x12\x00\x00")  # PROXY over UDP/IPv4 with no address block
@example(SIGNATURE + b"\x21\x21\xff\xff")  # claims 64 KiB, has none
@example(SIGNATURE + b"\x21\x41\x00\x00")  # unknown family
def test_proxy_v2_raises_only_its_error(data: bytes) -> None:
    try:
        parsed = parse_proxy_v2(data)
    except ProxyV2Error:
        return
    if parsed is None:  # an incomplete prefix: only ever shorter than the header claims
        assert len(data) < 16 or len(data) < 16 + int.from_bytes(data[14:16], "big")
        return
    assert 16 <= parsed.length <= len(data)


def _same(a: tuple[str, int] | None, b: tuple[str, int]) -> bool:
    return (
        a is not None and ipaddress.ip_address(a[0]) == ipaddress.ip_address(b[0]) and a[1] == b[1]
    )


@SETTINGS
@given(endpoints(), st.booleans(), st.binary(max_size=40), st.binary(max_size=40))
def test_proxy_v2_round_trip(
    pair: tuple[tuple[str, int], tuple[str, int]], datagram: bool, tlvs: bytes, payload: bytes
) -> None:
    src, dst = pair
    header = build_proxy_v2(src, dst, datagram, tlvs)
    parsed = parse_proxy_v2(header + payload)
    assert isinstance(parsed, ProxyHeader) and parsed.length == len(header)
    assert _same(parsed.source, src) and _same(parsed.destination, dst)
    for cut in range(len(header)):  # every strict prefix is "wait for more", never an error
        assert parse_proxy_v2(header[:cut]) is None


# -- ECS (RFC 7871) -------------------------------------------------------------------------
@st.composite
def ecs_bytes(draw: st.DrawFn) -> bytes:
    """Mostly near-valid options: small family, plausible prefix, short address."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=24))
    family = draw(st.sampled_from([0, 1, 2, 3, 0xFFFF]))
    source = draw(st.integers(0, 140))
    scope = draw(st.sampled_from([0, 0, 0, 1, 255]))
    address = draw(st.binary(max_size=18))
    return family.to_bytes(2, "big") + bytes([source, scope]) + address


@SETTINGS
@given(ecs_bytes())
@example(b"\x00\x01\x20\x00\xc0\x00\x02")  # /32 with three octets
@example(b"\x00\x01\x18\x00\xc0\x00\x02\x01")  # /24 with four octets
@example(b"\x00\x02\x81\x00")  # /129
def test_ecs_raises_only_its_error(data: bytes) -> None:
    try:
        network = parse_ecs(data)
    except EcsError:
        return
    family = int.from_bytes(data[0:2], "big")
    assert network.version == (4 if family == 1 else 6)
    assert network.prefixlen == data[2]
    assert len(data) == 4 + (data[2] + 7) // 8


def _ecs_option(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bytes:
    family = 1 if network.version == 4 else 2
    octets = (network.prefixlen + 7) // 8
    head = family.to_bytes(2, "big") + bytes([network.prefixlen, 0])
    return head + network.network_address.packed[:octets]


@st.composite
def networks(draw: st.DrawFn) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Any network of either family (hypothesis has addresses, not networks)."""
    address = draw(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
    prefix = draw(st.integers(0, address.max_prefixlen))
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


@SETTINGS
@given(networks())
def test_ecs_round_trip(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
    assert parse_ecs(_ecs_option(network)) == network


# -- list parsers ---------------------------------------------------------------------------
NAMEISH = st.text(alphabet="abcxyz019-_.*Ä|^@$!#;/ ", min_size=1, max_size=30)
IDN = st.sampled_from(["bücher.de", "ÉCOLE.fr", "xn--bcher-kva.de", "Tiếng-Việt.vn", "ß.de"])
LINE_PIECES = st.one_of(
    NAMEISH,
    IDN,
    st.sampled_from(
        [
            "0.0.0.0",
            "127.0.0.1 localhost",
            "::",
            "||",
            "^",
            "@@||",
            "$important",
            "$dnsrewrite=NOERROR;A;1.2.3.4",
            "$dnsrewrite=x;y",
            "##.ad",
            "CNAME",
            "CNAME .",
            "CNAME rpz-passthru.",
            "A 192.0.2.1",
            "IN",
            "300",
            "$ORIGIN rpz.example.",
            "$TTL 60",
            "$INCLUDE x",
            "@ SOA a. b. 1 2 3 4 5",
            "(",
            ")",
            "*.",
            "a" * 64,
            ".".join(["a" * 63] * 4),
            '"quoted ; text"',
        ]
    ),
    # Any text except the characters str.splitlines() treats as a line break (see below).
    st.text(st.characters(blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")),
)
LINES = st.lists(
    st.lists(LINE_PIECES, min_size=0, max_size=4).map(" ".join)
    | st.lists(LINE_PIECES, min_size=1, max_size=3).map("\t".join),
    max_size=25,
)


def _check_result(result: ParseResult, lines: list[str]) -> None:
    for problem in result.problems:
        assert 1 <= problem.line_no <= len(lines), problem
        assert problem.text == lines[problem.line_no - 1], problem
        assert problem.reason
    for rule in result.rules:
        assert rule.name == normalise(rule.name), rule  # a fixed point of normalise
        assert rule.name.isascii() and rule.name == rule.name.lower()
        assert 0 < len(rule.name) <= MAX_NAME and not rule.name.endswith(".")


@SETTINGS
@given(LINES, st.sampled_from(FORMATS), st.sampled_from(["\n", "\r\n"]))
@example(["0.0.0.0 bücher.de", "0.0.0.0 a..b"], "hosts", "\n")
@example(["x CNAME (", "  .", ")", "y CNAME ."], "rpz", "\n")
@example(["owner"], "rpz", "\n")
@example(["$"], "rpz", "\n")
@example(["||ß.de^$dnsrewrite=ä..b"], "adblock", "\n")
def test_list_parsers_never_raise(lines: list[str], fmt: str, newline: str) -> None:
    result = parse(newline.join(lines), fmt)
    _check_result(result, lines)


def _is_content(line: str) -> bool:
    return bool(line.partition("#")[0].strip())


@SETTINGS
@given(LINES, st.sampled_from(["domains", "wildcard", "allow"]))
def test_domain_lists_account_for_every_line(lines: list[str], fmt: str) -> None:
    result = parse("\n".join(lines), fmt)
    _check_result(result, lines)
    seen = [p.line_no for p in result.problems]
    assert len(seen) == len(set(seen))  # one line is one rule or one problem, never both
    assert len(result.rules) + len(result.problems) == sum(map(_is_content, lines))


@SETTINGS
@given(st.lists(st.one_of(NAMEISH, IDN), max_size=20))
def test_domain_names_normalise_to_a_fixed_point(names: list[str]) -> None:
    first = parse_domains("\n".join(names))
    again = parse_domains("\n".join(rule.name for rule in first.rules))
    assert [r.name for r in again.rules] == [r.name for r in first.rules]
    assert again.problems == [] or all("single-label" not in p.reason for p in again.problems)


@pytest.mark.parametrize("fmt", FORMATS)
def test_line_numbers_count_newlines_only(fmt: str) -> None:
    text = "ok.example\u2028still line one\nsecond line\x0c\nbad name here!\n"
    result = parse(text, fmt)
    bad = [p for p in result.problems if "bad name here!" in p.text]
    assert bad and bad[0].line_no == 3, result.problems


def test_ipv4_mapped_source_stays_distinct_from_ipv4() -> None:
    """A v6 header carrying ::ffff:a.b.c.d parses as written (clients.address_key maps it)."""
    header = build_proxy_v2(("::ffff:192.0.2.1", 1), ("::1", 53))
    parsed = parse_proxy_v2(header)
    assert parsed is not None and parsed.source is not None
    assert socket.inet_pton(socket.AF_INET6, parsed.source[0])[-4:] == bytes([192, 0, 2, 1])
