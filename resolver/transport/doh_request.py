"""DNS over HTTPS requests and responses (RFC 8484), as pure decisions apart from HTTP I/O."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from ..response import question_end, scan_answer
from ..wire import NOTIMP, Unanswerable, WireError
from ..wire_query import parse_query

PATH = "/dns-query"
CONTENT_TYPE = "application/dns-message"
MAX_MESSAGE = 65_535  # a DNS message's largest size (its TCP length prefix is 16 bits)
# HTTP/2 flow-control window for request bodies, one byte past a DNS message: with the
# default (65,535, the same size) a longer body could never arrive, so its 413 never came and
# the stream, with every POST sharing the connection's window, stalled until the idle timeout.
BODY_WINDOW = MAX_MESSAGE + 1
_BASE64URL = re.compile(rb"^[A-Za-z0-9_-]*$")
_REASONS = {
    400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
    415: "Unsupported Media Type", 431: "Request Header Fields Too Large", 200: "OK",
}  # fmt: skip


# respond(status, extra headers, body): how an HTTP session sends one request's answer
Respond = Callable[[int, list[tuple[bytes, bytes]], bytes], None]


class Owner(Protocol):
    """What an HTTP session (doh_h1, doh_h2) needs from its connection (doh.DohConnection)."""

    transport: Any

    def write(self, data: bytes) -> None: ...
    def write_records(self, records: list[bytes]) -> None: ...
    def close(self) -> None: ...
    def serve(
        self, method: str, target: str, content_type: str, body: bytes, respond: Respond
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Decoded:
    """A request's outcome: status 200 with the DNS query and device ID, or an HTTP error."""

    status: int
    query: bytes = b""
    device: str | None = None
    allow: bool = False  # a 405: the answer must carry ``Allow: GET, POST``


def reason(status: int) -> str:
    return _REASONS.get(status, "Error")


def device_of(path: str) -> tuple[bool, str | None]:
    """(is a DoH path, its device ID): ``/dns-query`` has none, ``/dns-query/ID`` names one."""
    if path == PATH:
        return True, None
    if path.startswith(PATH + "/"):
        device = path[len(PATH) + 1 :].lower()
        if device and "/" not in device:
            return True, device
    return False, None


def decode(method: str, target: str, content_type: str, body: bytes) -> Decoded:
    """What a DoH request asks, or the HTTP status that refuses it."""
    status, message, device = extract(method, target, content_type, body)
    if status != 200:
        return Decoded(status, allow=status == 405)
    if not is_query(message):
        return Decoded(400)  # not a DNS query at all: an HTTP error, not a DNS one
    return Decoded(200, message, device)


def extract(
    method: str, target: str, content_type: str, body: bytes
) -> tuple[int, bytes, str | None]:
    """(200, the DNS message, device ID), or (an HTTP status, b"", None): ``decode`` without
    checking that the message is a DNS query (an answer already prepared for the same bytes
    proves it is, without parsing it again)."""
    path, _, query_string = target.partition("?")
    known, device = device_of(path)
    if not known:
        return 404, b"", None
    if method == "GET":
        if query_string.startswith("dns=") and "&" not in query_string and "%" not in query_string:
            text = query_string[4:]  # what every client sends: dns= alone
        else:
            values = parse_qs(query_string).get("dns")
            if not values or len(values) != 1:
                return 400, b"", None
            text = values[0]
        message = _base64url(text.encode("ascii", "replace"))
    elif method == "POST":
        if content_type.split(";", 1)[0].strip().lower() != CONTENT_TYPE:
            return 415, b"", None
        message = body
    else:
        return 405, b"", None
    if message is None:
        return 400, b"", None
    if len(message) > MAX_MESSAGE:
        return 413, b"", None
    return 200, message, device


def is_query(message: bytes) -> bool:
    """A DNS query, even one answered with a DNS error (BADVERS, NOTIMP for any other opcode,
    REFUSED, FORMERR for a meta-type): those are answers with status 200 (RFC 8484 4.2.1).
    Not one when a QUERY's question cannot be read (no answer could echo it), nor a
    response: status 400."""
    try:
        parse_query(message)
    except Unanswerable:
        return False
    except WireError as exc:
        return exc.query is not None or exc.rcode == NOTIMP
    return True


def _base64url(text: bytes) -> bytes | None:
    """RFC 4648 section 5 without padding (RFC 8484 6); None when it is not that."""
    if not _BASE64URL.match(text) or len(text) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def max_age(response: bytes) -> int:
    """Cache-Control max-age for an answer: its lowest TTL (RFC 8484 5.1); 0 without records."""
    try:
        scanned = scan_answer(response, question_end(response))
    except WireError:
        return 0
    if not scanned.ancount and not scanned.nscount:
        return 0
    return max(0, min(scanned.min_ttl, 0x7FFFFFFF))
