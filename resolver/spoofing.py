"""Defences against spoofed upstream replies (RFC 5452): a fresh random source port per query,
random IDs, and 0x20 letter-case randomisation of the question (draft-vixie-dnsext-dns0x20).

A guesser must match the port (about 15 bits), the ID (16 bits) and, with 0x20, the case of
every letter of the name (a bit each) before its forged reply is believed.
"""

from __future__ import annotations

import os
import socket
from collections import deque

_RANDOM = bytearray()
_LETTERS = bytes(0x20 if 0x61 <= b <= 0x7A else 0 for b in range(256))  # a-z -> case bit
_PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS CSPRNG, read 8 KiB at a time: one os.urandom call per query
    (as secrets.randbits makes) cost more than the rest of the ID handling."""
    global _RANDOM
    if len(_RANDOM) < n:
        _RANDOM = bytearray(os.urandom(max(8192, n)))
    value = bytes(_RANDOM[-n:])
    del _RANDOM[-n:]
    return value


def random16() -> int:
    """A random query ID (or any 16-bit value)."""
    return int.from_bytes(random_bytes(2), "big")


def randomise_case(question: bytes) -> bytes:
    """``question`` (lowercase wire name + type + class) with each letter's case at random.

    Lowercase letters carry 0x20, so XOR with a random subset of that bit makes uppercase;
    label lengths (at most 63) and digits are untouched. Three C-level calls, no loop.
    """
    name = question[:-4]
    mask = name.translate(_LETTERS)
    flips = int.from_bytes(mask, "big") & int.from_bytes(random_bytes(len(name)), "big")
    cased = (int.from_bytes(name, "big") ^ flips).to_bytes(len(name), "big")
    return cased + question[-4:]


class SourcePorts:
    """Random source ports from the system's ephemeral range, none reused while it is recent.

    The kernel's own choice (bind to port 0) is random too, but with replacement: 3,000
    queries over Linux's 28,232 ports would repeat about 150 of them. Skipping the last
    ``recent`` ports costs a fraction of a bit of the port's entropy and repeats none.
    """

    def __init__(self, low: int = 0, high: int = 0, recent: int = 4096) -> None:
        if not low:
            low, high = _ephemeral_range()
        self.low, self.span = low, high - low + 1
        self._recent: deque[int] = deque()
        self._in_use: set[int] = set()
        self._limit = min(recent, self.span // 4)

    def pick(self) -> int:
        for _ in range(16):
            port = self.low + int.from_bytes(random_bytes(4), "big") % self.span
            if port not in self._in_use:
                break
        self._remember(port)
        return port

    def _remember(self, port: int) -> None:
        self._recent.append(port)
        self._in_use.add(port)
        if len(self._recent) > self._limit:
            self._in_use.discard(self._recent.popleft())

    def open(self, family: int, host: str, port: int) -> socket.socket:
        """A non-blocking UDP socket on a fresh random port, connected to ``host``:``port``
        (the kernel then drops datagrams from any other address or port)."""
        # Non-blocking from the start: one system call fewer per query than setblocking().
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        try:
            wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
            for _ in range(8):
                try:
                    sock.bind((wildcard, self.pick()))
                    break
                except OSError:  # in use by another socket: pick again
                    continue
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return sock


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open(_PORT_RANGE_FILE, encoding="ascii") as text:
            low, high = (int(x) for x in text.read().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high
