"""DoH request decisions (resolver/transport/doh_request.py): RFC 8484 paths, methods, codes."""

from __future__ import annotations

import base64

import dns.message
import dns.opcode
import dns.rrset
import pytest

from resolver.transport.doh_h2 import request_fields
from resolver.transport.doh_request import decode, device_of, max_age

QUERY = dns.message.make_query("www.example.test", "A").to_wire()
B64 = base64.urlsafe_b64encode(QUERY).rstrip(b"=").decode()


def test_get_with_base64url_without_padding_carries_the_query() -> None:
    decoded = decode("GET", f"/dns-query?dns={B64}", "", b"")
    assert (decoded.status, decoded.query, decoded.device) == (200, QUERY, None)


def test_post_with_the_dns_message_type_carries_the_query_and_the_path_names_the_device() -> None:
    decoded = decode("POST", "/dns-query/Kid-An", "application/dns-message", QUERY)
    assert (decoded.status, decoded.query, decoded.device) == (200, QUERY, "kid-an")


@pytest.mark.parametrize(
    ("method", "target", "content_type", "body", "status"),
    [
        ("GET", "/dns-query?dns=" + B64 + "=", "", b"", 400),  # padding is not base64url here
        ("GET", "/dns-query?dns=%%%%", "", b"", 400),
        ("GET", "/dns-query", "", b"", 400),  # no dns parameter
        ("GET", "/dns-query?dns=" + base64.urlsafe_b64encode(b"hello").decode(), "", b"", 400),
        ("POST", "/dns-query", "text/plain", QUERY, 415),
        ("POST", "/dns-query", "application/dns-message", b"\0" * 70_000, 413),
        ("POST", "/dns-query", "application/dns-message", b"\0" * 5, 400),
        ("GET", "/", "", b"", 404),
        ("GET", "/dns-query/a/b?dns=" + B64, "", b"", 404),
        ("PUT", "/dns-query", "", b"", 405),
    ],
)
def test_bad_requests_get_the_rfc_status(
    method: str, target: str, content_type: str, body: bytes, status: int
) -> None:
    assert decode(method, target, content_type, body).status == status


def _with_opcode(opcode: int) -> bytes:
    message = dns.message.make_query("www.example.test", "A")
    message.set_opcode(opcode)
    return message.to_wire()


@pytest.mark.parametrize(
    "message",
    [
        dns.message.make_query("www.example.test", "A", use_edns=1).to_wire(),  # BADVERS
        _with_opcode(dns.opcode.NOTIFY),  # NOTIMP
        dns.message.make_query("example.test", "AXFR").to_wire(),  # REFUSED
        dns.message.make_query("www.example.test", "TSIG").to_wire(),  # FORMERR
        _with_opcode(dns.opcode.NOTIFY)[:4] + b"\x00" * 8,  # NOTIMP, even with no question
    ],
    ids=["edns-version-1", "notify", "axfr", "meta-type", "notify-without-question"],
)
def test_a_well_formed_query_with_a_dns_error_is_status_200(message: bytes) -> None:
    # RFC 8484 4.2.1: a DNS error is a DNS answer in a 2xx response. These were 400, so a
    # client never saw the BADVERS that tells it to retry with EDNS version 0.
    for method, target, body in [
        ("GET", "/dns-query?dns=" + base64.urlsafe_b64encode(message).rstrip(b"=").decode(), b""),
        ("POST", "/dns-query", message),
    ]:
        decoded = decode(method, target, "application/dns-message", body)
        assert (decoded.status, decoded.query) == (200, message)


@pytest.mark.parametrize(
    "message",
    [QUERY[:11], QUERY[:4] + b"\x00\x00" + QUERY[6:], QUERY[:20], QUERY[:12] + b"\xc0\x0c\x00\x01"],
    ids=["short", "no-question", "cut-question", "pointer-in-question"],
)
def test_a_message_whose_question_cannot_be_read_is_status_400(message: bytes) -> None:
    assert decode("POST", "/dns-query", "application/dns-message", message).status == 400


def test_only_the_dns_query_path_and_one_segment_under_it_are_doh() -> None:
    assert device_of("/dns-query") == (True, None)
    assert device_of("/dns-query/lab-01") == (True, "lab-01")
    assert device_of("/dns-query/") == (False, None)
    assert device_of("/other") == (False, None)


def test_max_age_is_the_lowest_ttl_of_the_answer() -> None:
    response = dns.message.make_response(dns.message.make_query("a.test", "A"))
    response.answer.append(dns.rrset.from_text("a.test.", 300, "IN", "A", "192.0.2.1"))
    response.answer.append(dns.rrset.from_text("a.test.", 42, "IN", "A", "192.0.2.2"))
    assert max_age(response.to_wire()) == 42
    empty = dns.message.make_response(dns.message.make_query("a.test", "A"))
    assert max_age(empty.to_wire()) == 0


# The h2 fallback's own request check (h2's is off for speed: resolver/transport/doh_h2.py).
GOOD = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/dns-query?dns=" + B64.encode())]


def test_a_well_formed_request_head_gives_method_path_and_content_type() -> None:
    fields = request_fields(
        GOOD + [(b"content-type", b"application/dns-message"), (b"te", b"trailers")]
    )
    assert fields == ("GET", "/dns-query?dns=" + B64, "application/dns-message")


@pytest.mark.parametrize(
    "headers",
    [
        GOOD[:2],  # no :path
        GOOD + [(b":path", b"/dns-query")],  # twice
        GOOD + [(b"accept", b"*/*"), (b":authority", b"x")],  # pseudo after regular
        GOOD + [(b":status", b"200")],  # a response's pseudo-header
        GOOD + [(b"Accept", b"*/*")],  # upper case
        GOOD + [(b"connection", b"close")],  # connection-specific
        GOOD + [(b"te", b"gzip")],  # te other than trailers
        GOOD + [(b"", b"x")],  # an empty name
    ],
)
def test_a_malformed_request_head_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    assert request_fields(headers) is None
