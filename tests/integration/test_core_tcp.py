"""TCP (RFC 7766) against ``lachan serve``: pipelining with out-of-order answers, idle timeout,
connection limit, half-sent frames and slow senders that block nobody, QR=1 never answered."""

from __future__ import annotations

import socket
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.conftest import LachanFactory
from tests.stub_upstream import PING, LachanProcess, StubUpstream, raw_udp


def frame(message: dns.message.Message | bytes) -> bytes:
    data = message if isinstance(message, bytes) else message.to_wire()
    return len(data).to_bytes(2, "big") + data


def connect(server: LachanProcess, host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect((host, server.port))
    return sock


def read_frame(sock: socket.socket) -> bytes:
    size = int.from_bytes(read_exactly(sock, 2), "big")
    return read_exactly(sock, size)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {size} bytes")
        out += chunk
    return out


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection, or None if it stayed open."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def udp_ok(server: LachanProcess, name: str) -> bool:
    reply = dns.query.udp(
        dns.message.make_query(name, "A"), "127.0.0.1", port=server.port, timeout=2
    )
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def test_pipelined_queries_all_answered_out_of_order_allowed(
    module_lachan: LachanProcess, fresh_stub: StubUpstream
) -> None:
    cached = [f"warm{i}.example.test" for i in range(10)]
    for name in cached:
        assert udp_ok(module_lachan, name)
    fresh_stub.mode, fresh_stub.delay = "slow", 0.3
    misses = [f"cold{i}.example.test" for i in range(40)]
    queries = [dns.message.make_query(n, "A") for n in misses + cached]
    for i, query in enumerate(queries):
        query.id = 1000 + i  # distinct: 50 random IDs collide about 2% of the time
    with connect(module_lachan) as sock:
        sock.sendall(b"".join(frame(q) for q in queries))  # one write: true pipelining
        replies = [dns.message.from_wire(read_frame(sock)) for _ in queries]
    by_id = {r.id: r for r in replies}
    assert set(by_id) == {q.id for q in queries}
    for q in queries:
        assert by_id[q.id].question == q.question and by_id[q.id].answer
    # The cached answers did not wait behind the slow misses sent before them.
    first_ten = {r.question[0].name.to_text().rstrip(".") for r in replies[:10]}
    assert first_ten == set(cached)


def test_many_queries_one_connection_in_sequence(module_lachan: LachanProcess) -> None:
    with connect(module_lachan, "::1") as sock:
        for i in range(100):
            query = dns.message.make_query(f"seq{i % 5}.example.test", "AAAA")
            sock.sendall(frame(query))
            reply = dns.message.from_wire(read_frame(sock))
            assert reply.id == query.id and reply.answer


def test_half_sent_length_prefix_and_slow_sender_block_nobody(module_lachan: LachanProcess) -> None:
    stuck = connect(module_lachan)
    stuck.sendall(b"\x00")  # half a length prefix, then nothing
    query = dns.message.make_query("slowloris.example.test", "A")
    data = frame(query)
    slow = connect(module_lachan)
    try:
        slow.sendall(data[:5])
        started = time.monotonic()
        assert udp_ok(module_lachan, "other.example.test")
        with connect(module_lachan) as other:
            other.sendall(frame(dns.message.make_query("other2.example.test", "A")))
            assert dns.message.from_wire(read_frame(other)).answer
        assert time.monotonic() - started < 1.0
        for i in range(5, len(data)):  # the rest, one byte at a time
            slow.sendall(data[i : i + 1])
            time.sleep(0.005)
        assert dns.message.from_wire(read_frame(slow)).id == query.id
    finally:
        stuck.close()
        slow.close()


def test_qr1_packets_get_no_reply(module_lachan: LachanProcess) -> None:
    response = bytearray(dns.message.make_query("reflect.example.test", "A").to_wire())
    response[2] |= 0x80
    assert raw_udp(module_lachan.port, bytes(response), timeout=0.5) is None
    with connect(module_lachan) as sock:
        follow = dns.message.make_query("after.example.test", "A")
        sock.sendall(frame(bytes(response)) + frame(follow))
        reply = dns.message.from_wire(read_frame(sock))
        assert reply.id == follow.id  # the QR=1 frame got nothing, the next one its answer
    assert raw_udp(module_lachan.port, PING) is not None


def test_zero_length_frame_is_ignored(module_lachan: LachanProcess) -> None:
    with connect(module_lachan) as sock:
        follow = dns.message.make_query("zero.example.test", "A")
        sock.sendall(b"\x00\x00" + frame(follow))
        assert dns.message.from_wire(read_frame(sock)).id == follow.id


TCP_CONFIG = "tcp: {max_connections: 3, idle_timeout: 0.5}\n"


def test_idle_timeout(lachan: LachanFactory) -> None:
    server = lachan(config=TCP_CONFIG)
    with connect(server) as idle:
        closed = closed_within(idle, 3.0)
    assert closed is not None and 0.3 < closed < 1.5
    with connect(server) as busy:
        for _ in range(4):  # activity keeps it open past the timeout
            busy.sendall(frame(dns.message.make_query("busy.example.test", "A")))
            read_frame(busy)
            time.sleep(0.2)
        closed = closed_within(busy, 3.0)
    assert closed is not None and closed < 1.5


def test_connection_limit(lachan: LachanFactory) -> None:
    server = lachan(config=TCP_CONFIG.replace("0.5", "30"))
    held = [connect(server) for _ in range(3)]
    try:
        for sock in held:  # each accepted connection answers
            sock.sendall(frame(dns.message.make_query("limit.example.test", "A")))
            assert read_frame(sock)
        extra = connect(server)
        assert closed_within(extra, 2.0) is not None  # the fourth is closed at once
        extra.close()
        assert udp_ok(server, "limit2.example.test")  # UDP is not affected
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # freed slots are reused
        with connect(server) as again:
            again.sendall(frame(dns.message.make_query("limit3.example.test", "A")))
            try:
                if read_frame(again):
                    return
            except (ConnectionError, TimeoutError):
                time.sleep(0.1)
    pytest.fail("connections closed by clients never freed their slots")


def test_inflight_limit_per_connection_holds_for_a_pipelined_burst(
    lachan: LachanFactory, stub: StubUpstream
) -> None:
    """RFC 7766 6.2.1.1: reading pauses at max_inflight_per_connection open queries; queries
    already received in the same segment must wait too, not all go upstream at once."""
    server = lachan(config="tcp: {max_inflight_per_connection: 4}\n")
    stub.mode, stub.delay = "slow", 0.3
    queries = [dns.message.make_query(f"burst{i}.example.test", "A") for i in range(24)]
    with connect(server) as sock:
        sock.sendall(b"".join(frame(q) for q in queries))
        time.sleep(0.15)
        at_once = sum(stub.count(f"burst{i}.example.test") for i in range(24))
        replies = [dns.message.from_wire(read_frame(sock)) for _ in queries]
    assert {r.id for r in replies} == {q.id for q in queries}
    assert at_once <= 4, f"{at_once} queries went upstream at once with a limit of 4"


def test_trickled_frame_does_not_hold_a_slot_forever(lachan: LachanFactory) -> None:
    """Slowloris: a byte every 0.2 s never completes a message; with idle_timeout 0.5 only
    whole messages count as activity, so the connection is closed, not kept for ever."""
    server = lachan(config=TCP_CONFIG)
    data = frame(dns.message.make_query("trickle.example.test", "A"))
    with connect(server) as sock:
        started = time.monotonic()
        closed_after = None
        for i in range(len(data) - 1):  # never the last byte
            try:
                sock.sendall(data[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(10) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
    assert closed_after is not None and closed_after < 2.0
