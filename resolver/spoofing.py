"""Defences against spoofed upstream replies (RFC 5452): a fresh random source port per query,
random IDs, and 0x20 letter-case randomisation of the question (draft-vixie-dnsext-dns0x20).

A guesser must match the port (about 15 bits), the ID (16 bits) and, with 0x20, the case of
every letter of the name (a bit each) before its forged reply is believed.

All three are made in C, with the attempt's socket (resolver/_upsock.c, UpSockets.open):
random bytes come from getrandom() 4 KiB at a time, ports from the system's ephemeral range.
The kernel's own choice of port (bind to port 0) is random too, but with replacement: 3,000
queries over Linux's 28,232 ports would repeat about 150 of them. Skipping the last
``recent`` ports costs a fraction of a bit of the port's entropy and repeats none.
"""

from __future__ import annotations

try:
    from ._nametable import UpSockets, pack_address
except ImportError as exc:  # a checkout's extension built before resolver/_upsock.c existed
    raise ImportError(
        "resolver._nametable predates resolver/_upsock.c: rebuild it (make, or pip install -e .)"
    ) from exc

__all__ = ["attempt_sockets", "pack_address"]

_PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def attempt_sockets(recent: int = 4096) -> UpSockets:
    """The set of upstream attempts' sockets, on ports of the ephemeral range, none of the
    last ``recent`` picks (at most a quarter of the range) picked again."""
    low, high = _ephemeral_range()
    return UpSockets(low, high, recent)


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open(_PORT_RANGE_FILE, encoding="ascii") as text:
            low, high = (int(x) for x in text.read().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high
