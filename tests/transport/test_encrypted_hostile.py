"""Hostile clients of the DoT and DoH listeners: each is closed or refused, the server lives on.

Slowloris on the TLS handshake, on a DoT frame and on an HTTP/2 request; oversized HTTP/2
frames, streams past the limit, a stream-reset flood, the connection limit, and a bounded fuzzer
feeding random TLS records and HTTP/2 frames. Memory is checked after the fuzzer.
"""

from __future__ import annotations

import random
import socket
import ssl
import time
from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import h2.config
import h2.connection
import h2.events
import hyperframe.frame
import pytest
from tls_helpers import (
    SERVER_NAME,
    Pki,
    client_context,
    encrypted_config,
    make_pki,
    ports,
    wait_for_port,
)

from tests.stub_upstream import LachanProcess, StubUpstream

IDLE = 1.0  # the server's tcp.idle_timeout in these tests


class Servers:
    def __init__(self, process: LachanProcess, dot: int, doh: int) -> None:
        self.process, self.dot, self.doh = process, dot, doh


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def servers(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    dot, doh = ports(), ports()
    extra = f"tcp: {{idle_timeout: {IDLE}, max_connections: 20}}\n"
    with StubUpstream() as stub:
        process = LachanProcess(
            tmp_path_factory.mktemp("hostile"),
            [stub.address],
            encrypted_config(pki, dot, doh, extra),
        )
        with process:
            wait_for_port(dot)
            wait_for_port(doh)
            yield Servers(process, dot, doh)
            assert process.alive(), process.stderr()
            process.assert_clean_log()


def _still_serves(servers: Servers, pki: Pki) -> None:
    query = dns.message.make_query("www.example.test", "A")
    answer = dns.query.tls(
        query,
        "127.0.0.1",
        port=servers.dot,
        timeout=5,
        ssl_context=client_context(pki),
        server_hostname=SERVER_NAME,
    )
    assert answer.rcode() == dns.rcode.NOERROR
    assert servers.process.alive()


def _closed_within(sock: socket.socket | ssl.SSLSocket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (reads and discards whatever it sends)."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
        pass
    except TimeoutError:
        raise AssertionError(f"still open after {seconds}s") from None
    return time.monotonic() - start


def _h2(servers: Servers, pki: Pki) -> tuple[ssl.SSLSocket, h2.connection.H2Connection]:
    raw = socket.create_connection(("127.0.0.1", servers.doh), timeout=5)
    tls = client_context(pki, ("h2",)).wrap_socket(raw, server_hostname=SERVER_NAME)
    assert tls.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    return tls, conn


def _headers(path: str = "/dns-query") -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":path", path),
        (":scheme", "https"),
        (":authority", SERVER_NAME),
        ("content-type", "application/dns-message"),
    ]


def test_a_tls_handshake_left_half_done_is_closed_after_the_idle_timeout(servers, pki) -> None:
    with socket.create_connection(("127.0.0.1", servers.dot), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then silence
        assert _closed_within(raw, IDLE + 5) >= IDLE * 0.9
    _still_serves(servers, pki)


def test_a_dot_frame_trickled_byte_by_byte_does_not_keep_the_connection(servers, pki) -> None:
    raw = socket.create_connection(("127.0.0.1", servers.dot), timeout=5)
    with client_context(pki).wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
        wire = dns.message.make_query("www.example.test", "A").to_wire()
        frame = len(wire).to_bytes(2, "big") + wire
        start = time.monotonic()
        try:
            for byte in frame[:-1]:  # never the last byte
                tls.sendall(bytes([byte]))
                time.sleep(IDLE / 4)
                if time.monotonic() - start > IDLE * 4:
                    break
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        _closed_within(tls, IDLE + 5)
        assert time.monotonic() - start < IDLE * 4 + 5
    _still_serves(servers, pki)


def test_an_http2_request_never_finished_is_closed_after_the_idle_timeout(servers, pki) -> None:
    tls, conn = _h2(servers, pki)
    with tls:
        conn.send_headers(1, _headers(), end_stream=False)
        tls.sendall(conn.data_to_send())
        assert _closed_within(tls, IDLE + 5) >= IDLE * 0.5
    _still_serves(servers, pki)


def _goaway(tls: ssl.SSLSocket, conn: h2.connection.H2Connection) -> int | None:
    """The error code of the server's GOAWAY, read until it closes (None: no GOAWAY)."""
    tls.settimeout(IDLE + 5)
    code = None
    try:
        while data := tls.recv(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    code = event.error_code
    except (ConnectionResetError, ssl.SSLError, h2.exceptions.ProtocolError):
        pass
    return code


def test_an_oversized_http2_frame_gets_goaway_frame_size_error(servers, pki) -> None:
    tls, conn = _h2(servers, pki)
    with tls:
        conn.send_headers(1, _headers(), end_stream=False)
        tls.sendall(conn.data_to_send())
        # A DATA frame header announcing 1 MiB (the server allows 16 KiB frames).
        tls.sendall(
            (1 << 20).to_bytes(3, "big") + b"\x00\x00" + (1).to_bytes(4, "big") + b"x" * 1000
        )
        assert _goaway(tls, conn) == h2.errors.ErrorCodes.FRAME_SIZE_ERROR
    _still_serves(servers, pki)


def test_streams_beyond_the_advertised_limit_are_refused(servers, pki) -> None:
    # RFC 9113 5.1.2: a stream error (PROTOCOL_ERROR or REFUSED_STREAM) for each stream past
    # SETTINGS_MAX_CONCURRENT_STREAMS, which nghttp2 sends; h2 (the fallback) ends the whole
    # connection instead. Either way no excess stream is served or kept.
    tls, conn = _h2(servers, pki)
    refusals = (h2.errors.ErrorCodes.PROTOCOL_ERROR, h2.errors.ErrorCodes.REFUSED_STREAM)
    with tls:
        # Raw HEADERS frames, since h2 as a client would itself refuse to exceed the limit.
        block = conn.encoder.encode(_headers())
        frames = b""
        for stream_id in range(1, 2 * 150, 2):
            frame = hyperframe.frame.HeadersFrame(stream_id, block, flags=["END_HEADERS"])
            frames += frame.serialize()
        tls.sendall(frames)
        refused: set[int] = set()
        tls.settimeout(5)
        buffer = b""
        try:
            # Frames read with hyperframe: the h2 client never opened these streams itself.
            while len(refused) < 50 and (data := tls.recv(65536)):
                buffer += data
                while len(buffer) >= 9:
                    frame, length = hyperframe.frame.Frame.parse_frame_header(buffer[:9])
                    if len(buffer) < 9 + length:
                        break
                    frame.parse_body(memoryview(buffer[9 : 9 + length]))
                    buffer = buffer[9 + length :]
                    if isinstance(frame, hyperframe.frame.GoAwayFrame):
                        assert frame.error_code in refusals
                        refused.update(range(2 * 100 + 1, 2 * 150, 2))
                    elif isinstance(frame, hyperframe.frame.RstStreamFrame):
                        assert frame.error_code in refusals
                        refused.add(frame.stream_id)
        except (ConnectionResetError, ssl.SSLError):
            pass
        assert len(refused) >= 50 and min(refused) > 2 * 100 - 1, sorted(refused)
    _still_serves(servers, pki)


def test_a_flood_of_opened_and_reset_streams_ends_the_connection(servers, pki) -> None:
    tls, conn = _h2(servers, pki)
    with tls:
        frames = b""
        for stream_id in range(1, 2 * 300, 2):
            block = conn.encoder.encode(_headers())
            frames += hyperframe.frame.HeadersFrame(
                stream_id, block, flags=["END_HEADERS"]
            ).serialize()
            frames += hyperframe.frame.RstStreamFrame(stream_id, error_code=8).serialize()
        try:
            tls.sendall(frames)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        assert _goaway(tls, conn) == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    _still_serves(servers, pki)


def _events_until(tls: ssl.SSLSocket, conn: h2.connection.H2Connection, kind: type) -> list:
    """h2 events read from the server until one of ``kind`` arrives (5 s at most)."""
    tls.settimeout(5)
    events: list = []
    while not any(isinstance(e, kind) for e in events):
        data = tls.recv(65536)
        assert data, f"closed before a {kind.__name__}: {events}"
        events += conn.receive_data(data)
        tls.sendall(conn.data_to_send())
    return events


@pytest.mark.parametrize(
    "headers",
    [
        [(":method", "GET"), (":scheme", "https"), (":authority", SERVER_NAME)],  # no :path
        _headers() + [(":path", "/dns-query")],  # a pseudo-header after a regular one
        _headers()[:4] + [("Content-Type", "application/dns-message")],  # upper case
        _headers() + [("connection", "keep-alive")],  # connection-specific (RFC 9113 8.2.2)
        _headers() + [(":status", "200")],  # a response's pseudo-header in a request
    ],
    ids=["no-path", "late-pseudo", "upper-case", "connection", "status"],
)
def test_a_malformed_request_head_resets_its_stream_and_the_connection_serves_on(
    servers, pki, headers: list[tuple[str, str]]
) -> None:
    # h2's own header checks are off for speed (resolver/transport/doh_h2.py); ours must
    # still treat these as malformed (RFC 9113 8.1.1): PROTOCOL_ERROR on that stream only.
    tls, _ = _h2(servers, pki)
    with tls:
        # A client that sends what it is given (its preface went out in _h2: same bytes).
        config = h2.config.H2Configuration(
            validate_outbound_headers=False, normalize_outbound_headers=False
        )
        conn = h2.connection.H2Connection(config)
        conn.initiate_connection()
        conn.data_to_send()
        conn.send_headers(1, headers, end_stream=True)
        tls.sendall(conn.data_to_send())
        events = _events_until(tls, conn, h2.events.StreamReset)
        (reset,) = [e for e in events if isinstance(e, h2.events.StreamReset)]
        assert reset.stream_id == 1 and reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        wire = dns.message.make_query("www.example.test", "A").to_wire()
        conn.send_headers(3, _headers())
        conn.send_data(3, wire, end_stream=True)
        tls.sendall(conn.data_to_send())
        events = _events_until(tls, conn, h2.events.StreamEnded)
        body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
        assert dns.message.from_wire(body).rcode() == dns.rcode.NOERROR
    _still_serves(servers, pki)


def test_connections_beyond_the_shared_tcp_limit_are_refused(servers, pki) -> None:
    held = []
    try:
        for _ in range(20):  # tcp.max_connections
            raw = socket.create_connection(("127.0.0.1", servers.dot), timeout=5)
            held.append(client_context(pki).wrap_socket(raw, server_hostname=SERVER_NAME))
        raw = socket.create_connection(("127.0.0.1", servers.doh), timeout=5)
        extra = client_context(pki, ("h2",)).wrap_socket(raw, server_hostname=SERVER_NAME)
        _closed_within(extra, 5)  # aborted at once: the DoT connections used every slot
        extra.close()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    _still_serves(servers, pki)


def _rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status", encoding="ascii"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_bounded_fuzzer_of_tls_records_and_http2_frames_leaves_the_server_serving(
    servers, pki
) -> None:
    rng = random.Random(14)
    pid = servers.process.process.pid  # type: ignore[union-attr]
    _still_serves(servers, pki)
    before = _rss_kib(pid)
    deadline = time.monotonic() + 20
    for _ in range(60):  # random TLS records, before and instead of a handshake
        if time.monotonic() > deadline:
            break
        port = rng.choice((servers.dot, servers.doh))
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            record = bytes([rng.choice((20, 21, 22, 23, rng.randrange(256))), 3, rng.randrange(5)])
            payload = rng.randbytes(rng.randrange(0, 600))
            try:
                raw.sendall(record + len(payload).to_bytes(2, "big") + payload)
                raw.settimeout(2)
                raw.recv(4096)
            except OSError:
                pass
    for _ in range(60):  # random HTTP/2 frames after a valid preface
        if time.monotonic() > deadline:
            break
        tls, conn = _h2(servers, pki)
        with tls:
            frames = b""
            for _ in range(rng.randrange(1, 8)):
                payload = rng.randbytes(rng.randrange(0, 200))
                header = len(payload).to_bytes(3, "big") + bytes(
                    [rng.randrange(11), rng.randrange(256)]
                )
                frames += header + (rng.randrange(0, 9) | 0).to_bytes(4, "big") + payload
            try:
                tls.sendall(frames)
                tls.settimeout(2)
                tls.recv(65536)
            except (OSError, ssl.SSLError):
                pass
    _still_serves(servers, pki)
    assert _rss_kib(pid) - before < 30 * 1024, "memory grew by more than 30 MiB"


def test_an_http1_request_head_trickled_slowly_is_closed_after_the_idle_timeout(
    servers, pki
) -> None:
    raw = socket.create_connection(("127.0.0.1", servers.doh), timeout=5)
    tls = client_context(pki, ("http/1.1",)).wrap_socket(raw, server_hostname=SERVER_NAME)
    with tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        tls.sendall(b"GET /dns-query?dns=AAAB")  # the head never ends
        assert _closed_within(tls, IDLE + 5) >= IDLE * 0.5
    _still_serves(servers, pki)


def test_an_oversized_http1_head_gets_431_and_the_connection_closes(servers, pki) -> None:
    raw = socket.create_connection(("127.0.0.1", servers.doh), timeout=5)
    tls = client_context(pki, ("http/1.1",)).wrap_socket(raw, server_hostname=SERVER_NAME)
    with tls:
        tls.sendall(b"GET /dns-query HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        tls.settimeout(5)
        reply = b""
        try:
            while chunk := tls.recv(65536):
                reply += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply[:100]
    _still_serves(servers, pki)
