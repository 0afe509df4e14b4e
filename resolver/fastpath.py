"""The fast path for blocked names: one C call decides whether a query may skip the pipeline.

``Index.classify`` (resolver/_nametable.c) reads a plain query, checks the profile's static
names, and walks the index: for a listed name it returns the winning template, the qtype, the
EDNS and DO bits and the end of the question, packed into one int. When that template's
decision under the profile is a block that does not depend on the clock, the answer is the
query's ID, a prepared header, the query's own question and a prepared body, exactly what the
pipeline would have built (over UDP and over streams alike: a prepared block fits in 512
bytes, so UDP never truncates it), so the transport sends it at the cost of a cache hit.

What keeps it exact: anything unusual (malformed, options in the OPT record such as ECS or a
cookie, meta types, another class) is left to the pipeline; so is any name that has a static
rule (allow, deny, safe search, anti-bypass, the canary), because decide() looks there first;
keywords never matter for a name the lists already block; scheduled categories are not
prepared; and the transport only takes this path for clients that may use prepared answers
at all (no rate limit, query log or PROXY header).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from ._nametable import QEND_BITS, Table, build_table

QEND_MASK = (1 << QEND_BITS) - 1
EXACT, BELOW = 1, 2  # static table values: a rule for the name itself, for names below it
MAX_QUESTION = 4 + 255  # a question's bytes after the header, at most
_PLAIN = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


class Shape(NamedTuple):
    """The parts of a query a block answer depends on (a Query has the same attributes)."""

    qtype: int
    edns: bool
    do: bool


def unpack(key: int) -> tuple[int, Shape]:
    """(template id, shape) of a classify() key (the result shifted right by QEND_BITS)."""
    return key >> 18, Shape((key >> 2) & 0xFFFF, bool(key & 2), bool(key & 1))


def static_table(exact: Iterable[str], below: Iterable[str]) -> Table | None:
    """The profile's static names for classify(), or None to keep the fast path off.

    The C code hashes wire bytes, so a name only matches itself if it is written as plain
    lowercase labels; one that is not (it would not be, after normalisation) turns the fast
    path off for the profile rather than risk a static rule going unseen.
    """
    bits: dict[str, int] = {}
    for names, bit in ((exact, EXACT), (below, BELOW)):
        for name in names:
            if not _PLAIN.fullmatch(name):
                return None
            bits[name] = bits.get(name, 0) | bit
    names = list(bits)
    blob, cap, seed = build_table(names, [bits[n] for n in names], 2)
    return Table(blob, b"", cap, 2, seed)
