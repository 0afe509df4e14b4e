"""PROXY protocol v2 header parsing: good headers, LOCAL, TLVs, partial and malformed input."""

from __future__ import annotations

import pytest

from resolver.proxyv2 import SIGNATURE, ProxyHeader, ProxyV2Error, build_proxy_v2, parse_proxy_v2

QUERY = b"\x12\x34\x01\x00"  # the start of a DNS message that follows the header


def header(ver_cmd: int, fam: int, body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return SIGNATURE + bytes([ver_cmd, fam]) + size.to_bytes(2, "big") + body


V4_BODY = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + (40000).to_bytes(2, "big") + (53).to_bytes(2)
V6_BODY = (
    bytes.fromhex("20010db8000000000000000000000001")
    + bytes.fromhex("20010db8000000000000000000000035")
    + (5353).to_bytes(2, "big")
    + (853).to_bytes(2, "big")
)

GOOD = [
    (header(0x21, 0x12, V4_BODY), ("192.0.2.1", 40000), ("198.51.100.2", 53)),  # UDP over IPv4
    (header(0x21, 0x11, V4_BODY), ("192.0.2.1", 40000), ("198.51.100.2", 53)),  # TCP over IPv4
    (header(0x21, 0x21, V6_BODY), ("2001:db8::1", 5353), ("2001:db8::35", 853)),
    (header(0x21, 0x12, V4_BODY + b"\x04\x00\x01\x00"), ("192.0.2.1", 40000), ("198.51.100.2", 53)),
    (header(0x20, 0x00, b""), None, None),  # LOCAL: a health check, use the peer address
    (header(0x20, 0x12, V4_BODY), None, None),  # LOCAL ignores any address block
    (header(0x21, 0x00, b""), None, None),  # PROXY with UNSPEC family
    (header(0x21, 0x31, bytes(216)), None, None),  # AF_UNIX: no IP to map
]


@pytest.mark.parametrize(("data", "source", "destination"), GOOD)
def test_parse(data, source, destination) -> None:
    parsed = parse_proxy_v2(data + QUERY)
    assert parsed == ProxyHeader(len(data), source, destination)
    length, src, dst = parsed  # unpacks as the (length, source, destination) triple
    assert (data + QUERY)[length:] == QUERY


def test_build_round_trip() -> None:
    for src, dst, dgram in [
        (("10.0.0.7", 1234), ("10.0.0.1", 53), True),
        (("2001:db8::7", 1), ("2001:db8::1", 53), False),
    ]:
        raw = build_proxy_v2(src, dst, datagram=dgram, tlvs=b"\x05\x00\x02ab")
        assert parse_proxy_v2(raw) == ProxyHeader(len(raw), src, dst)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        SIGNATURE[:5],
        SIGNATURE + b"\x21\x12",
        header(0x21, 0x12, V4_BODY)[:-1],  # declared length not all there yet
    ],
)
def test_incomplete_prefix_needs_more(data) -> None:
    assert parse_proxy_v2(data) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x12\x34\x01\x00" + bytes(20), "signature missing"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n", "signature missing"),  # v1 text
        (SIGNATURE[:-1] + b"X" + bytes(8), "signature missing"),
        (header(0x11, 0x12, V4_BODY), "version 1, expected 2"),
        (header(0x22, 0x12, V4_BODY), "command 0x2 unknown"),
        (header(0x21, 0x42, V4_BODY), "family 0x4 unknown"),
        (header(0x21, 0x13, V4_BODY), "transport 0x3 unknown"),
        (header(0x21, 0x10, V4_BODY), "transport 0x0 unknown"),
        (header(0x21, 0x12, V4_BODY[:8]), "too short for the addresses"),
        (header(0x21, 0x21, V4_BODY), "too short for the addresses"),  # v6 needs 36 bytes
        (header(0x21, 0x31, bytes(100)), "too short for the addresses"),
    ],
)
def test_malformed(data, message) -> None:
    with pytest.raises(ProxyV2Error, match=message):
        parse_proxy_v2(data)
    assert issubclass(ProxyV2Error, ValueError)


def test_accepts_memoryview() -> None:
    raw = build_proxy_v2(("192.0.2.1", 5), ("192.0.2.2", 53))
    parsed = parse_proxy_v2(memoryview(raw + QUERY))
    assert parsed is not None and parsed.source == ("192.0.2.1", 5)
