"""Tests for resolver/spoofing.py: 0x20 letter case and random source ports."""

from __future__ import annotations

import socket

from resolver.spoofing import SourcePorts, random16, randomise_case
from resolver.wire import text_to_wire

QUESTION = text_to_wire("www.xn--strae-oqa.example-1.test") + b"\x00\x01\x00\x01"


def test_randomised_case_changes_only_the_case_of_letters() -> None:
    for _ in range(50):
        cased = randomise_case(QUESTION)
        assert len(cased) == len(QUESTION) and cased.lower() == QUESTION
        assert cased[-4:] == QUESTION[-4:]
        changed = [a for a, b in zip(cased, QUESTION, strict=True) if a != b]
        assert all(ord("A") <= c <= ord("Z") for c in changed)


def test_randomised_case_varies_between_queries() -> None:
    assert len({randomise_case(QUESTION) for _ in range(50)}) >= 45


def test_query_ids_cover_the_16_bit_range() -> None:
    ids = [random16() for _ in range(2000)]
    assert min(ids) < 2000 and max(ids) > 63_000 and len(set(ids)) > 1900


def test_source_ports_stay_in_range_and_repeat_none_of_the_recent() -> None:
    ports = SourcePorts(40_000, 40_999, recent=200)
    picked = [ports.pick() for _ in range(200)]
    assert all(40_000 <= p <= 40_999 for p in picked)
    assert len(set(picked)) == 200


def test_an_opened_socket_is_connected_from_a_picked_port() -> None:
    ports = SourcePorts()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        sock = ports.open(socket.AF_INET, "127.0.0.1", server.getsockname()[1])
        try:
            assert sock.getpeername() == server.getsockname()
            assert sock.getsockname()[1] in ports._in_use
        finally:
            sock.close()
