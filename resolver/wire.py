"""Hand-written DNS wire vocabulary for the hot path: codes, the errors, the Query, names.

dnslib parses whole messages into objects, which costs far more than the rest of a cache hit;
a query only needs its question and EDNS parameters, so they are read directly
(wire_query.py), and names are read, checked and written here (RFC 1035 section 4).
Anything malformed raises ``WireError`` with the rcode to answer, or ``Unanswerable`` when no
reply may be sent at all.
"""

from __future__ import annotations

from ._nametable import wire_to_text  # C; wire_to_text_py below is its reference

# Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2).
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010

# Response codes (RFC 1035, RFC 6891 for the extended BADVERS).
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16

# Record types this module needs to recognise.
TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_OPT = 41
TYPE_SVCB = 64
TYPE_HTTPS = 65
TYPE_TSIG = 250
TYPE_IXFR = 251
TYPE_AXFR = 252
TYPE_MAILA = 254
TYPE_ANY = 255
CLASS_IN = 1

# EDNS option codes (RFC 7871, RFC 7873, RFC 8914).
OPT_ECS = 8
OPT_COOKIE = 10
OPT_EDE = 15

DO_BIT = 0x8000
HEADER_LEN = 12
MAX_NAME_LEN = 255

# Cache-key flag byte: the answer differs with DO (DNSSEC records) and CD (unvalidated data).
KEY_DO = 0x01
KEY_CD = 0x02


class Unanswerable(Exception):
    """The packet must be dropped without reply (too short to echo, or QR=1: reflection)."""


class WireError(Exception):
    """A query that gets an error answer; ``query`` holds what was parsed, if anything."""

    def __init__(self, rcode: int, query: Query | None = None, detail: str = "") -> None:
        super().__init__(detail or f"rcode {rcode}")
        self.rcode = rcode
        self.query = query


class Query:
    """What the resolver needs from one query; offsets point into ``data``."""

    __slots__ = (
        "data",
        "qend",
        "key",
        "qtype",
        "qclass",
        "edns",
        "udp_size",
        "do",
        "ecs",
        "cookie",
    )

    def __init__(self, data: bytes, qend: int, key: bytes, qtype: int, qclass: int) -> None:
        self.data = data
        self.qend = qend  # offset just past QTYPE/QCLASS
        self.key = key  # lowercase qname wire + qtype + qclass + key flag byte
        self.qtype = qtype
        self.qclass = qclass
        self.edns = False
        self.udp_size = 512
        self.do = False
        self.ecs: bytes | None = None
        self.cookie: bytes | None = None

    @property
    def qname_wire(self) -> bytes:
        """The question name as the client wrote it (letter case kept, for 0x20)."""
        return self.data[HEADER_LEN : self.qend - 4]

    @property
    def qname(self) -> str:
        """The lowercase dotted name without trailing dot ('' for the root)."""
        return wire_to_text(self.key[: len(self.key) - 5])

    @property
    def flags(self) -> int:
        return (self.data[2] << 8) | self.data[3]


def wire_to_text_py(wire: bytes) -> str:
    """Dotted text of an uncompressed wire name; non-printable bytes escaped as \\DDD.

    The reference for resolver/_wire.c's ``wire_to_text`` (tests/test_wire_c.py holds the
    two equal)."""
    # Decode once, slice labels out of the text, then one set of C-level checks that every
    # character is printable ASCII, not a space or a backslash, and that no label hides a
    # dot, instead of a Python loop over bytes.
    text = wire.decode("latin-1")
    labels = []
    pos = 0
    length = wire[0]
    while length:
        labels.append(text[pos + 1 : pos + 1 + length])
        pos += length + 1
        length = wire[pos]
    joined = ".".join(labels)
    if (
        joined.isascii()
        and joined.isprintable()
        and " " not in joined
        and "\\" not in joined
        and joined.count(".") == len(labels) - 1
    ):
        return joined
    return ".".join(_label_text(label.encode("latin-1")) for label in labels)


def _label_text(label: bytes) -> str:
    if all(0x21 <= b <= 0x7E and b not in (0x2E, 0x5C) for b in label):
        return label.decode("ascii")
    return "".join(
        chr(b) if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C) else f"\\{b:03d}" for b in label
    )


def text_to_wire(name: str) -> bytes:
    """Wire form of a dotted name (no escapes needed: names come from config and lists)."""
    name = name.rstrip(".")
    if not name:
        return b"\x00"
    out = bytearray()
    for label in name.split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad label in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > MAX_NAME_LEN:
        raise ValueError(f"name too long: {name!r}")
    return bytes(out)


def skip_name(data: bytes, pos: int, size: int) -> int:
    """Offset past a possibly compressed name (pointers are not followed, only skipped)."""
    while True:
        if pos >= size:
            raise WireError(FORMERR, None, "truncated name")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 2 > size:
                raise WireError(FORMERR, None, "truncated pointer")
            return pos + 2
        if length > 63:
            raise WireError(FORMERR, None, "reserved label type")
        pos += length + 1


def check_name(data: bytes, pos: int) -> int:
    """Offset past a possibly compressed name, after checking it as ``read_name`` does.

    For names in upstream answers that are passed on to clients: a pointer that goes forward,
    loops or leaves the message would make our answer malformed. Builds nothing.
    """
    end = -1
    limit = pos
    bound = len(data)  # see read_name: what a pointer leads to must end before the pointer
    length_so_far = 0
    while True:
        if pos >= bound:
            raise WireError(FORMERR, None, "truncated name, or one running into its pointer")
        length = data[pos]
        if length == 0:
            return pos + 1 if end < 0 else end
        if length & 0xC0 == 0xC0:
            if pos + 2 > bound:
                raise WireError(FORMERR, None, "truncated pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            # Into the header is never a name, and our answer has another header there.
            if target >= limit or target < HEADER_LEN:
                raise WireError(FORMERR, None, "compression pointer forward, looping or in header")
            if end < 0:
                end = pos + 2
            bound = pos
            pos = limit = target
            continue
        if length > 63:
            raise WireError(FORMERR, None, "reserved label type")
        length_so_far += length + 1
        if length_so_far >= MAX_NAME_LEN:  # the root label still follows
            raise WireError(FORMERR, None, "name longer than 255 octets")
        pos += length + 1


def read_name(data: bytes, pos: int) -> tuple[bytes, int]:
    """Decompress a name at ``pos``: (uncompressed wire name, offset past it in ``data``).

    Pointers must point strictly backwards (RFC 1035 4.1.4 allows only prior occurrences),
    which also makes loops impossible, and what a pointer leads to must end before the
    pointer itself: a prior *name*, not a run of labels made of the bytes that follow it (a
    pointer into a question's type, say). dnspython holds names to the same rule.
    """
    out = bytearray()
    end = -1
    limit = pos
    bound = len(data)
    while True:
        if pos >= bound:
            raise WireError(FORMERR, None, "truncated name, or one running into its pointer")
        length = data[pos]
        if length == 0:
            out.append(0)
            return bytes(out), (pos + 1 if end < 0 else end)
        if length & 0xC0 == 0xC0:
            if pos + 2 > bound:
                raise WireError(FORMERR, None, "truncated pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= limit:
                raise WireError(FORMERR, None, "forward or looping compression pointer")
            if end < 0:
                end = pos + 2
            bound = pos
            pos = limit = target
            continue
        if length > 63:
            raise WireError(FORMERR, None, "reserved label type")
        out += data[pos : pos + length + 1]
        if len(out) >= MAX_NAME_LEN:  # the root label still follows
            raise WireError(FORMERR, None, "name longer than 255 octets")
        pos += length + 1
