"""Seeded generators of hostile DNS packets for the packet fuzzer (tests/fuzz/run.py).

Every generator takes a ``random.Random`` and returns bytes; the same seed gives the same
packets, so a failing run is replayed exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import dns.edns
import dns.flags
import dns.message


def _seed_queries() -> list[bytes]:
    """Well-formed queries the mutator starts from: the shapes clients really send."""
    options = [dns.edns.ECSOption("192.0.2.0", 24), dns.edns.GenericOption(10, b"\x01" * 8)]
    made = [
        dns.message.make_query("www.example.test", "A"),
        dns.message.make_query("WwW.ExAmPlE.TeSt", "AAAA", use_edns=0, payload=4096),
        dns.message.make_query("big.example.test", "TXT", use_edns=0, ednsflags=dns.flags.DO),
        dns.message.make_query("cname.example.test", "A", use_edns=0, options=options),
        dns.message.make_query("nx.example.test", "HTTPS", use_edns=0),
        dns.message.make_query("version.bind", "TXT", "CH"),
        dns.message.make_query(".", "NS"),
    ]
    return [m.to_wire() for m in made]


SEEDS = _seed_queries()
HEADER = b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
QUESTION = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"


def random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((rng.randint(0, 16), rng.randint(0, 600))))


def mutated(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 8)):
        _mutate(rng, data)
    return bytes(data)


def _mutate(rng: random.Random, data: bytearray) -> None:
    kind = rng.randrange(7)
    at = rng.randrange(len(data)) if data else 0
    if kind == 0 and data:
        data[at] ^= 1 << rng.randrange(8)
    elif kind == 1 and data:
        data[at] = rng.choice((0, 0x3F, 0x40, 0xC0, 0xFF, rng.randrange(256)))
    elif kind == 2:
        data[at:at] = rng.randbytes(rng.randint(1, 8))
    elif kind == 3 and data:
        del data[at : at + rng.randint(1, 8)]
    elif kind == 4:
        del data[rng.randint(0, len(data)) :]
    elif kind == 5 and len(data) > 4:
        start = rng.randrange(len(data) - 2)
        data[at:at] = data[start : start + rng.randint(1, 16)]
    elif len(data) >= 12:
        field = rng.choice((4, 6, 8, 10))
        data[field : field + 2] = rng.choice((0, 1, 2, 0x7FFF, 0xFFFF)).to_bytes(2, "big")


def header_bits(rng: random.Random) -> bytes:
    """A valid question under a random flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode)."""
    return rng.randbytes(2) + rng.randbytes(2) + HEADER[4:] + QUESTION


def huge_counts(rng: random.Random) -> bytes:
    counts = b"".join(rng.choice((0, 1, 2, 255, 0xFFFF)).to_bytes(2, "big") for _ in range(4))
    body = QUESTION + rng.randbytes(rng.randint(0, 40))
    return rng.randbytes(2) + b"\x01\x00" + counts + body


def compression(rng: random.Random) -> bytes:
    """Pointers where none may be: in the question, looping, forward, into the header."""
    target = rng.choice((0, 2, 12, 13, 14, 0x3FFF, rng.randrange(64)))
    pointer = bytes((0xC0 | target >> 8, target & 0xFF))
    name = rng.choice(
        (
            pointer,
            b"\x01a" + pointer,
            b"\x03www" + pointer + b"\x00",
            pointer * rng.randint(2, 40),
            b"\x01a" * rng.randint(100, 200) + b"\x00",  # over 255 octets
            bytes((rng.choice((0x40, 0x80, 0x41)),)) + b"abc\x00",
        )
    )
    body = name + b"\x00\x01\x00\x01"
    arcount = 0
    if rng.random() < 0.5:  # an OPT whose owner is a pointer
        body += pointer + b"\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
        arcount = 1
    return rng.randbytes(2) + b"\x01\x00\x00\x01\x00\x00\x00\x00" + bytes((0, arcount)) + body


def edns(rng: random.Random) -> bytes:
    """A good question with a hostile OPT: versions, flags, option lengths, several OPTs."""
    options = b""
    for _ in range(rng.randint(0, 4)):
        code = rng.choice((0, 3, 8, 10, 12, 15, 0xFFFF, rng.randrange(65536)))
        payload = rng.randbytes(rng.randint(0, 20))
        length = rng.choice((len(payload), len(payload) + rng.randint(1, 9), 0xFFFF))
        options += code.to_bytes(2, "big") + length.to_bytes(2, "big") + payload
    rdlen = rng.choice((len(options), max(0, len(options) - 1), len(options) + 3))
    opt = (
        b"\x00\x00\x29"
        + rng.randbytes(2)
        + bytes((rng.randrange(256), rng.choice((0, 0, 1, 255))))
        + rng.randbytes(2)
        + rdlen.to_bytes(2, "big")
        + options
    )
    copies = rng.choice((1, 1, 1, 2))
    return (
        rng.randbytes(2)
        + b"\x01\x00\x00\x01\x00\x00\x00\x00"
        + bytes((0, copies))
        + QUESTION
        + opt * copies
    )


GENERATORS: tuple[Callable[[random.Random], bytes], ...] = (
    random_bytes,
    mutated,
    mutated,
    mutated,
    header_bits,
    huge_counts,
    compression,
    edns,
)


def packet(rng: random.Random) -> bytes:
    return rng.choice(GENERATORS)(rng)
