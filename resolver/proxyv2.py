"""PROXY protocol v2 headers (haproxy's PROXY spec, section 2.2): who the front end saw."""

from __future__ import annotations

import socket
from typing import Final, NamedTuple

SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_FIXED: Final = 16  # signature (12) + version/command + family/transport + length (2)
_LOCAL, _PROXY = 0x0, 0x1
_UNSPEC, _INET, _INET6, _UNIX = 0x0, 0x1, 0x2, 0x3
_STREAM, _DGRAM = 0x1, 0x2
# Address block size per family: two addresses and two ports (UNIX: two 108-byte paths).
_ADDRESS_BYTES: Final = {_INET: 12, _INET6: 36, _UNIX: 216}

Endpoint = tuple[str, int]


class ProxyV2Error(ValueError):
    """A malformed PROXY v2 header: the connection or datagram is dropped."""


class ProxyHeader(NamedTuple):
    """``length`` bytes to skip; ``source``/``destination`` None for LOCAL or non-IP families."""

    length: int
    source: Endpoint | None
    destination: Endpoint | None


def parse_proxy_v2(data: bytes | bytearray | memoryview) -> ProxyHeader | None:
    """Parse the PROXY v2 header at the start of ``data``.

    Returns None when ``data`` is a valid but incomplete prefix of a header (a TCP reader
    waits for more bytes; for a datagram that is an error). TLVs after the addresses are
    skipped. LOCAL (a front end's own health check) gives no addresses: use the peer's.
    """
    prefix = bytes(data[: len(SIGNATURE)])
    if not SIGNATURE.startswith(prefix):
        raise ProxyV2Error("PROXY v2 signature missing")
    if len(data) < _FIXED:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2:
        raise ProxyV2Error(f"PROXY protocol version {version}, expected 2")
    if command not in (_LOCAL, _PROXY):
        raise ProxyV2Error(f"PROXY v2 command {command:#x} unknown")
    family, transport = data[13] >> 4, data[13] & 0x0F
    length = _FIXED + int.from_bytes(data[14:16], "big")
    if len(data) < length:
        return None
    if command == _LOCAL:
        return ProxyHeader(length, None, None)
    return ProxyHeader(length, *_addresses(data, family, transport, length))


def _addresses(
    data: bytes | bytearray | memoryview, family: int, transport: int, length: int
) -> tuple[Endpoint | None, Endpoint | None]:
    if family not in (_UNSPEC, _INET, _INET6, _UNIX):
        raise ProxyV2Error(f"PROXY v2 address family {family:#x} unknown")
    if transport not in (_STREAM, _DGRAM) and family != _UNSPEC:
        raise ProxyV2Error(f"PROXY v2 transport {transport:#x} unknown")
    need = _ADDRESS_BYTES.get(family, 0)
    if length - _FIXED < need:
        raise ProxyV2Error(f"PROXY v2 length {length - _FIXED} too short for the addresses")
    if family in (_UNSPEC, _UNIX):
        return None, None
    size, af = (4, socket.AF_INET) if family == _INET else (16, socket.AF_INET6)
    block = data[_FIXED : _FIXED + need]
    src = socket.inet_ntop(af, bytes(block[:size]))
    dst = socket.inet_ntop(af, bytes(block[size : 2 * size]))
    ports = block[2 * size :]
    return (src, int.from_bytes(ports[0:2], "big")), (dst, int.from_bytes(ports[2:4], "big"))


def build_proxy_v2(
    source: Endpoint, destination: Endpoint, datagram: bool = True, tlvs: bytes = b""
) -> bytes:
    """A PROXY command header (for tests and tools that play the front end)."""
    v6 = ":" in source[0]
    af, family = (socket.AF_INET6, _INET6) if v6 else (socket.AF_INET, _INET)
    body = (
        socket.inet_pton(af, source[0])
        + socket.inet_pton(af, destination[0])
        + source[1].to_bytes(2, "big")
        + destination[1].to_bytes(2, "big")
        + tlvs
    )
    transport = _DGRAM if datagram else _STREAM
    head = SIGNATURE + bytes([0x20 | _PROXY, family << 4 | transport])
    return head + len(body).to_bytes(2, "big") + body
