"""Tests for resolver/_upsock.c (UpSockets): attempts' sockets in one epoll set, their
datagrams and errors, and that every descriptor is closed when its attempt or the set ends."""

from __future__ import annotations

import errno
import gc
import os
import select
import selectors
import socket
from collections.abc import Iterator

import pytest
from resolver._nametable import UpSockets, pack_address

from resolver.spoofing import attempt_sockets
from resolver.wire import text_to_wire

QUESTION = text_to_wire("example.test") + b"\x00\x01\x00\x01"
QUERY = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + QUESTION


def open_fds() -> int:
    gc.collect()  # earlier tests' garbage may hold descriptors until a collection
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def upstream() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(2)
        yield server


def wait(sockets: UpSockets) -> None:
    assert select.select([sockets.fileno()], [], [], 2)[0], "the set never became readable"


def test_a_reply_comes_back_with_its_attempts_owner(upstream: socket.socket) -> None:
    sockets = attempt_sockets()
    owner = object()
    fd, qid, asked = sockets.open(owner, pack_address(*upstream.getsockname()), QUERY, 18, False)
    assert len(sockets) == 1 and asked == QUESTION
    data, source = upstream.recvfrom(4096)
    assert data[2:] == QUERY[2:] and int.from_bytes(data[:2], "big") == qid
    upstream.sendto(b"reply", source)
    wait(sockets)
    [(got_owner, got)] = sockets.drain()
    assert got_owner is owner and got == b"reply"
    sockets.close(fd)
    assert len(sockets) == 0 and sockets.drain() == []


def test_ipv6_attempts_work_too() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as server:
        server.bind(("::1", 0))
        server.settimeout(2)
        sockets = attempt_sockets()
        fd, _, _ = sockets.open(1, pack_address("::1", server.getsockname()[1]), QUERY, 18, True)
        data, source = server.recvfrom(4096)
        server.sendto(data, source)
        wait(sockets)
        assert sockets.drain() == [(1, data)]
        sockets.shutdown()


def test_an_icmp_port_unreachable_is_reported_as_its_errno() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        dead = pack_address(*gone.getsockname())
    sockets = attempt_sockets()
    fd, _, _ = sockets.open("attempt", dead, QUERY, 18, True)
    wait(sockets)
    assert sockets.drain() == [("attempt", errno.ECONNREFUSED)]
    sockets.close(fd)


def test_one_datagram_per_socket_per_drain_and_the_rest_stay_ready(
    upstream: socket.socket,
) -> None:
    sockets = attempt_sockets()
    address = pack_address(*upstream.getsockname())
    first, _, _ = sockets.open("a", address, QUERY, 18, True)
    _, source_a = upstream.recvfrom(4096)
    second, _, _ = sockets.open("b", address, QUERY, 18, True)
    _, source_b = upstream.recvfrom(4096)
    for text in (b"a1", b"a2", b"a3"):
        upstream.sendto(text, source_a)
    upstream.sendto(b"b1", source_b)
    wait(sockets)
    assert sorted(sockets.drain()) == [("a", b"a1"), ("b", b"b1")]
    assert sockets.drain() == [("a", b"a2")]  # level-triggered: still ready, no new wake-up
    assert sockets.drain() == [("a", b"a3")]
    assert sockets.drain() == []
    sockets.close(first)
    sockets.close(second)


def test_the_set_wakes_a_selector_watching_only_its_descriptor(upstream: socket.socket) -> None:
    sockets = attempt_sockets()
    with selectors.EpollSelector() as outer:
        outer.register(sockets.fileno(), selectors.EVENT_READ)
        sockets.open("x", pack_address(*upstream.getsockname()), QUERY, 18, True)
        assert outer.select(0) == []
        upstream.sendto(b"r", upstream.recvfrom(4096)[1])
        assert len(outer.select(2)) == 1
        assert sockets.drain() == [("x", b"r")]
        assert outer.select(0) == []
    sockets.shutdown()


def test_a_closed_attempts_late_datagram_is_not_read_and_its_number_can_be_reused(
    upstream: socket.socket,
) -> None:
    sockets = attempt_sockets()
    address = pack_address(*upstream.getsockname())
    fd, _, _ = sockets.open("old", address, QUERY, 18, True)
    _, source = upstream.recvfrom(4096)
    sockets.close(fd)
    sockets.close(fd)  # twice: a no-op, not another descriptor's end
    upstream.sendto(b"late", source)  # to a closed port: the kernel drops it
    again, _, _ = sockets.open("new", address, QUERY, 18, True)
    assert again == fd  # the lowest free number: the same, now owned by the new attempt
    upstream.sendto(b"fresh", upstream.recvfrom(4096)[1])
    wait(sockets)
    assert sockets.drain() == [("new", b"fresh")]
    sockets.shutdown()


def test_every_descriptor_is_closed_by_close_shutdown_and_collection(
    upstream: socket.socket,
) -> None:
    address = pack_address(*upstream.getsockname())
    before = open_fds()
    sockets = attempt_sockets()
    fds = [sockets.open(i, address, QUERY, 18, True)[0] for i in range(50)]
    assert open_fds() == before + 51  # 50 sockets and the epoll set
    for fd in fds[:25]:
        sockets.close(fd)
    assert open_fds() == before + 26 and len(sockets) == 25
    sockets.shutdown()
    assert open_fds() == before and len(sockets) == 0
    sockets.open("reused", address, QUERY, 18, True)  # a shut set opens a new epoll set
    assert open_fds() == before + 2
    cycle: list[object] = []
    sockets.open(cycle, address, QUERY, 18, True)
    cycle.append(sockets)  # owner -> set -> owner: only the collector frees it
    del sockets, cycle
    gc.collect()
    assert open_fds() == before


def test_failures_raise_oserror_and_leave_no_descriptor(upstream: socket.socket) -> None:
    sockets = attempt_sockets()
    before = open_fds()
    with pytest.raises(OSError):
        sockets.open("x", b"", QUERY, 18, True)  # an upstream that is not an IP address
    with pytest.raises(OSError):
        sockets.open("x", b"\x02\x00" + bytes(14)[:-1], QUERY, 18, True)
    with pytest.raises(ValueError):
        sockets.open("x", pack_address(*upstream.getsockname()), QUERY[:20], 18, True)
    assert open_fds() == before
    with pytest.raises(PermissionError):  # connect(): broadcast without SO_BROADCAST
        sockets.open("x", pack_address("255.255.255.255", 53), QUERY, 18, True)
    assert open_fds() == before + 1 and len(sockets) == 0  # the epoll set only
    with pytest.raises(OSError):
        pack_address("upstream.example", 53)
    with pytest.raises(ValueError):
        UpSockets(2000, 1000)


def test_a_range_too_small_to_hold_recent_ports_still_picks_from_it(
    upstream: socket.socket,
) -> None:
    sockets = UpSockets(45_000, 45_002)  # three ports: nothing is "recent" (a quarter: 0)
    address = pack_address(*upstream.getsockname())
    for _ in range(10):
        fd, _, _ = sockets.open(None, address, QUERY, 18, True)
        assert 45_000 <= upstream.recvfrom(4096)[1][1] <= 45_002
        sockets.close(fd)
