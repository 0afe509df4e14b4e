"""Tests for resolver/spoofing.py (made in resolver/_upsock.c): 0x20 letter case, random IDs
and random source ports, seen from a real socket on loopback as an upstream sees them."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest
from resolver._nametable import UpSockets, pack_address

from resolver.spoofing import _ephemeral_range, attempt_sockets
from resolver.wire import text_to_wire

QUESTION = text_to_wire("www.xn--strae-oqa.example-1.test") + b"\x00\x01\x00\x01"
QUERY = b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01" + QUESTION + b"\x00\x00\x29\x04\xd0"


@pytest.fixture
def upstream() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(2)
        yield server


def ask(
    sockets: UpSockets, server: socket.socket, flip: bool = True
) -> tuple[int, bytes, bytes, int]:
    """One attempt: (qid, asked, the datagram the upstream got, its source port)."""
    address = pack_address(*server.getsockname())
    fd, qid, asked = sockets.open(object(), address, QUERY, len(QUESTION), flip)
    data, source = server.recvfrom(4096)
    sockets.close(fd)
    return qid, asked, data, source[1]


def test_randomised_case_changes_only_the_case_of_letters(upstream: socket.socket) -> None:
    sockets = attempt_sockets()
    for _ in range(50):
        qid, cased, data, _ = ask(sockets, upstream)
        assert data == qid.to_bytes(2, "big") + QUERY[2:12] + cased + QUERY[12 + len(cased) :]
        assert len(cased) == len(QUESTION) and cased.lower() == QUESTION
        assert cased[-4:] == QUESTION[-4:]
        changed = [a for a, b in zip(cased, QUESTION, strict=True) if a != b]
        assert all(ord("A") <= c <= ord("Z") for c in changed)


def test_randomised_case_varies_between_queries_and_is_off_when_asked(
    upstream: socket.socket,
) -> None:
    sockets = attempt_sockets()
    assert len({ask(sockets, upstream)[1] for _ in range(50)}) >= 45
    assert {ask(sockets, upstream, flip=False)[1] for _ in range(5)} == {QUESTION}


def test_query_ids_cover_the_16_bit_range(upstream: socket.socket) -> None:
    sockets = attempt_sockets()
    ids = [ask(sockets, upstream)[0] for _ in range(2000)]
    assert min(ids) < 2000 and max(ids) > 63_000 and len(set(ids)) > 1900


def test_source_ports_stay_in_range_and_repeat_none_of_the_recent(upstream: socket.socket) -> None:
    sockets = UpSockets(40_000, 40_999, 200)
    ports = [ask(sockets, upstream)[3] for _ in range(600)]
    assert all(40_000 <= p <= 40_999 for p in ports)
    # Any 201 consecutive attempts used 201 different ports (the kernel's own pick would
    # repeat one in about 20 of 1,000 after 200 draws).
    assert all(len(set(ports[i : i + 201])) == 201 for i in range(0, 400, 50))


def test_the_default_set_uses_the_systems_ephemeral_range(upstream: socket.socket) -> None:
    low, high = _ephemeral_range()
    sockets = attempt_sockets()
    ports = [ask(sockets, upstream)[3] for _ in range(300)]
    assert all(low <= p <= high for p in ports) and len(set(ports)) == 300


def test_a_reply_from_another_port_never_reaches_the_attempt(upstream: socket.socket) -> None:
    sockets = attempt_sockets()
    fd, qid, _ = sockets.open(
        "owner", pack_address(*upstream.getsockname()), QUERY, len(QUESTION), True
    )
    _, source = upstream.recvfrom(4096)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forger:
        forger.sendto(qid.to_bytes(2, "big") + b"forged", source)  # right ID, wrong source
        upstream.sendto(qid.to_bytes(2, "big") + b"real", source)
        select.select([sockets.fileno()], [], [], 2)
        assert sockets.drain() == [("owner", qid.to_bytes(2, "big") + b"real")]
        assert sockets.drain() == []
    sockets.close(fd)
