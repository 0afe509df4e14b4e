"""The same seeded hostile queries over UDP, TCP, DoT and DoH (GET and POST, HTTP/2 and
HTTP/1.1), every answer held to the rules of bad input: silence only where the code says so
(shorter than a header, QR=1), else an answer dnspython parses, with the query's ID and the
rcode the query deserves (NOTIMP for another opcode, BADVERS for EDNS version 1, FORMERR for
a malformed question, never FORMERR for a sound one); over DoH status 200 for every DNS
answer, 400 only where no question could be read. Afterwards each transport still answers,
and lachan logged no error. test_fuzz_server.py sends far more packets over UDP, but checks
only the replies' structure; this holds each reply to its own query, on every transport.
"""

from __future__ import annotations

import base64
import http.client
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import dns.exception
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import h2.connection
import h2.events
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

from tests.fuzz.packets import QUESTION, packet
from tests.stub_upstream import LachanProcess, StubUpstream

SEED = 20261206
PACKETS = 1000  # per transport (HTTP/1.1: one connection each, so fewer)
H1_PACKETS = 120
SILENT = frozenset()
PLAIN = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL, dns.rcode.REFUSED})
META_TYPES = {41, 250, 251, 252, 253, 254}


def _header(flags: bytes = b"\x01\x00", qd: int = 1, ar: int = 0) -> bytes:
    return b"\x00\x00" + flags + qd.to_bytes(2, "big") + b"\x00" * 4 + ar.to_bytes(2, "big")


def _opt(version: int = 0, rdata: bytes = b"", rdlen: int | None = None) -> bytes:
    size = len(rdata) if rdlen is None else rdlen
    return b"\x00\x00\x29\x04\xd0\x00" + bytes((version, 0, 0)) + size.to_bytes(2, "big") + rdata


def _ecs(family: int, source: int, scope: int, address: bytes) -> bytes:
    data = family.to_bytes(2, "big") + bytes((source, scope)) + address
    return b"\x00\x08" + len(data).to_bytes(2, "big") + data


def _targeted() -> list[bytes]:
    """The brief's cases one by one, before the seeded mutations."""
    one = _header(ar=1) + QUESTION
    cases = [
        b"", b"\x00", _header()[:11], _header(), _header() + QUESTION[:5],  # truncated
        _header(qd=0), _header(qd=2) + QUESTION, _header(qd=0xFFFF) + QUESTION,  # counts
        _header(ar=0xFFFF) + QUESTION, _header(ar=2) + QUESTION + _opt() + _opt(),  # two OPTs
        one + _opt(version=1), one + _opt(version=255),  # EDNS versions
        one + _opt(rdata=b"\x00\x08\x00\x10abc"), one + _opt(rdata=b"\x00\x08"),  # option lengths
        one + _opt(rdlen=50),
        _header(b"\x29\x00") + QUESTION, _header(b"\x11\x00") + QUESTION,  # UPDATE, STATUS
        _header(b"\x21\x00") + QUESTION, _header(b"\x79\x00") + QUESTION,  # NOTIFY, opcode 15
        _header(b"\x21\x00", qd=0),  # NOTIFY without a question (seed 11 found it over DoH)
        _header(b"\x81\x00") + QUESTION,  # QR=1
        _header() + b"\xc0\x0c\x00\x01\x00\x01", _header() + b"\x03www\xc0\x0c\x00\x01\x00\x01",
        _header() + b"\x40abc\x00\x00\x01\x00\x01", _header() + b"\x3fabc\x00\x00\x01\x00\x01",
        _header() + b"\x01a" * 128 + b"\x00\x00\x01\x00\x01",  # a 257-octet name
        _header() + QUESTION + b"trailing",
    ]  # fmt: skip
    for subnet in [(1, 24, 0, b"\xc0\x00\x02"), (1, 33, 0, b"\xc0\x00\x02\x00\x00"),
                   (1, 24, 5, b"\xc0\x00\x02"), (2, 129, 0, b"\x20" * 17), (3, 8, 0, b"\x01"),
                   (1, 8, 0, b"\xc0\x00\x02"), (1, 20, 0, b"\xc0\x00\x0f")]:  # fmt: skip
        cases.append(one + _opt(rdata=_ecs(*subnet)))
    cases += [_header() + QUESTION[:-4] + t.to_bytes(2, "big") + b"\x00\x01" for t in META_TYPES]
    return cases


def hostile_queries(count: int) -> list[bytes]:
    """Targeted cases, then seeded mutations (tests/fuzz/packets.py); packet i has ID i, so
    each answer finds its query."""
    rng = random.Random(SEED)
    made = _targeted()
    while len(made) < count:
        made.append(packet(rng)[:65535])
    return [i.to_bytes(2, "big") + p[2:] if len(p) >= 2 else p for i, p in enumerate(made)]


def _compressed_question(query: bytes) -> bool:
    pos = 12
    while pos < len(query) and query[pos]:
        if query[pos] > 63:
            return True
        pos += query[pos] + 1
    return False


def _compressed_opt_owner(query: bytes) -> bool:
    """An OPT whose owner is a pointer (to some root byte): RFC 6891 6.1.2 asks for the
    root itself, and lachan, unlike dnspython, refuses anything else."""
    pos = 12
    while query[pos]:
        pos += query[pos] + 1
    pos += 5
    for _ in range(int.from_bytes(query[10:12], "big")):
        compressed = False
        while pos < len(query) and query[pos]:
            if query[pos] >= 0xC0:
                compressed, pos = True, pos + 1
                break
            pos += query[pos] + 1
        pos += 1
        if compressed and query[pos : pos + 2] == b"\x00\x29":
            return True
        pos += 10 + int.from_bytes(query[pos + 8 : pos + 10], "big")
    return False


def allowed_rcodes(query: bytes) -> frozenset[int] | None:
    """The rcodes ``query`` may get, SILENT for none at all, None for any (dnspython itself
    cannot read it: lachan may refuse it or, like unbound, overlook what it does not need)."""
    if len(query) < 12 or query[2] & 0x80:
        return SILENT
    try:
        message = dns.message.from_wire(query)
    except (dns.exception.DNSException, ValueError):
        return None
    if message.opcode() != dns.opcode.QUERY:
        return frozenset({dns.rcode.NOTIMP})
    if len(message.question) != 1 or message.answer or message.authority:
        return frozenset({dns.rcode.FORMERR})
    if _compressed_question(query):  # lachan refuses compression in a question (wire.py)
        return frozenset({dns.rcode.FORMERR})
    if message.edns >= 0 and _compressed_opt_owner(query):
        return frozenset({dns.rcode.FORMERR})
    if message.edns > 0:
        return frozenset({dns.rcode.BADVERS})
    if message.question[0].rdtype in META_TYPES:
        return frozenset({dns.rcode.FORMERR, dns.rcode.REFUSED})
    if any(option.otype == 8 for option in message.options):  # ECS: lachan checks scope too
        return PLAIN | {dns.rcode.FORMERR}
    return PLAIN


def problem(query: bytes, reply: bytes | None) -> str | None:
    """What is wrong with ``reply`` (None: no reply) to ``query``; None when nothing is."""
    allowed = allowed_rcodes(query)
    if reply is None:
        return None if allowed is SILENT else "no answer"
    if allowed is SILENT:
        return "an answer where silence was due"
    try:
        answer = dns.message.from_wire(reply)
    except (dns.exception.DNSException, ValueError) as exc:
        return f"answer dnspython cannot parse ({exc!r})"
    if answer.id != int.from_bytes(query[:2], "big") or not answer.flags & 0x8000:
        return f"answer with ID {answer.id} or without QR"
    if allowed is not None and answer.rcode() not in allowed:
        return f"rcode {dns.rcode.to_text(answer.rcode())}"
    return None


def _judge(queries: list[bytes], replies: dict[int, bytes], transport: str) -> None:
    problems = [
        f"{transport}: {message}: query {query.hex()} answer {replies.get(i, b'').hex()}"
        for i, query in enumerate(queries)
        if (message := problem(query, replies.get(i)))
    ]
    assert not problems, f"{len(problems)} problems, the first: " + "\n".join(problems[:5])


# -- the server -------------------------------------------------------------------------------
class Server:
    def __init__(self, process: LachanProcess, dot: int, doh: int, pki: Pki) -> None:
        self.process, self.dot, self.doh, self.pki = process, dot, doh, pki


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    dot, doh = ports(), ports()
    config = encrypted_config(pki, dot, doh, "upstream: {timeout: 0.3}\n")
    with StubUpstream(seed=13) as stub:
        work = tmp_path_factory.mktemp("fuzz-transports")
        with LachanProcess(work, [stub.address], config, ipv6=False) as process:
            wait_for_port(dot)
            wait_for_port(doh)
            yield Server(process, dot, doh, pki)
            assert process.alive(), process.stderr()
            process.assert_clean_log()


def _answers_a_good_query(server: Server) -> None:
    query = dns.message.make_query("after.example.test", "A")
    reply = dns.query.udp(query, "127.0.0.1", port=server.process.port, timeout=3)
    assert reply.answer and server.process.alive()
    server.process.assert_clean_log()


# -- UDP, TCP, DoT ------------------------------------------------------------------------------
def test_udp(server: Server) -> None:
    queries = hostile_queries(PACKETS)
    replies: dict[int, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.settimeout(0.5)
        for start in range(0, len(queries), 50):  # in bursts the server's buffer holds
            for data in queries[start : start + 50]:
                sock.sendto(data, ("127.0.0.1", server.process.port))
            expected = sum(allowed_rcodes(q) is not SILENT for q in queries[start : start + 50])
            try:
                for _ in range(expected):
                    reply = sock.recv(65535)
                    replies[int.from_bytes(reply[:2], "big")] = reply
            except TimeoutError:
                pass
        time.sleep(0.2)  # late answers to packets due silence would show here
        sock.setblocking(False)
        try:
            while reply := sock.recv(65535):
                replies[int.from_bytes(reply[:2], "big")] = reply
        except BlockingIOError:
            pass
    _judge(queries, replies, "udp")
    _answers_a_good_query(server)


def _stream(connect: Callable[[], socket.socket], queries: list[bytes]) -> dict[int, bytes]:
    """Queries pipelined, 50 to a connection; the answers by ID."""
    replies: dict[int, bytes] = {}
    for start in range(0, len(queries), 50):
        chunk = queries[start : start + 50]
        expected = sum(allowed_rcodes(q) is not SILENT for q in chunk)
        with connect() as sock:
            sock.settimeout(3)
            sock.sendall(b"".join(len(q).to_bytes(2, "big") + q for q in chunk))
            buffer, got = b"", 0
            try:
                while got < expected and (data := sock.recv(65535)):
                    buffer += data
                    while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                        size = int.from_bytes(buffer[:2], "big")
                        reply, buffer = buffer[2 : 2 + size], buffer[2 + size :]
                        replies[int.from_bytes(reply[:2], "big")] = reply
                        got += 1
            except (TimeoutError, ConnectionResetError, ssl.SSLError):
                pass
    return replies


def test_tcp(server: Server) -> None:
    queries = hostile_queries(PACKETS)
    port = server.process.port
    replies = _stream(lambda: socket.create_connection(("127.0.0.1", port), timeout=3), queries)
    _judge(queries, replies, "tcp")
    _answers_a_good_query(server)


def test_dot(server: Server) -> None:
    queries = hostile_queries(PACKETS)

    def connect() -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", server.dot), timeout=3)
        return client_context(server.pki).wrap_socket(raw, server_hostname=SERVER_NAME)

    _judge(queries, _stream(connect, queries), "dot")
    _answers_a_good_query(server)


# -- DoH --------------------------------------------------------------------------------------
def _doh_problem(query: bytes, status: int | None, body: bytes) -> str | None:
    if status == 200:
        return problem(query, body)
    allowed = allowed_rcodes(query)
    # 400 where no answer could echo a question: dnspython cannot read it either, lachan
    # refuses its compressed question, or it is no query at all (too short, QR=1).
    if status == 400 and (allowed is None or allowed is SILENT or allowed == {dns.rcode.FORMERR}):
        return None
    return f"HTTP status {status}"


def _target(query: bytes) -> str:
    return "/dns-query?dns=" + base64.urlsafe_b64encode(query).rstrip(b"=").decode()


def _h2_request(conn: h2.connection.H2Connection, stream_id: int, query: bytes, post: bool) -> None:
    head = [(":scheme", "https"), (":authority", SERVER_NAME)]
    if post:
        head += [(":method", "POST"), (":path", "/dns-query"),
                 ("content-type", "application/dns-message")]  # fmt: skip
        conn.send_headers(stream_id, head)
        conn.send_data(stream_id, query, end_stream=True)
    else:
        conn.send_headers(stream_id, head + [(":method", "GET"), (":path", _target(query))],
                          end_stream=True)  # fmt: skip


def _h2_exchange(server: Server, queries: list[bytes], post: bool) -> list[str]:
    """Every query on one HTTP/2 connection, 50 streams at a time; the problems."""
    raw = socket.create_connection(("127.0.0.1", server.doh), timeout=5)
    problems = []
    with client_context(server.pki, ("h2",)).wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
        conn = h2.connection.H2Connection()
        conn.initiate_connection()
        for start in range(0, len(queries), 50):
            streams = {}
            for query in queries[start : start + 50]:
                stream_id = conn.get_next_available_stream_id()
                streams[stream_id] = [query, None, b"", False]  # query, status, body, ended
                _h2_request(conn, stream_id, query, post)
            tls.sendall(conn.data_to_send())
            while not all(s[3] for s in streams.values()):
                data = tls.recv(65536)
                assert data, "the server closed the HTTP/2 connection"
                for event in conn.receive_data(data):
                    stream = streams.get(getattr(event, "stream_id", 0))
                    if stream is None:
                        continue
                    if isinstance(event, h2.events.ResponseReceived):
                        stream[1] = int(dict(event.headers)[b":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        stream[2] += event.data
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                        stream[3] = True
                tls.sendall(conn.data_to_send())
            for query, status, body, _ in streams.values():
                if message := _doh_problem(query, status, body):
                    problems.append(f"{message}: query {query.hex()} answer {body.hex()}")
    return problems


@pytest.mark.parametrize("post", [True, False], ids=["post", "get"])
def test_doh_http2(server: Server, post: bool) -> None:
    problems = _h2_exchange(server, hostile_queries(PACKETS), post)
    assert not problems, f"{len(problems)} problems, the first: " + "\n".join(problems[:5])
    _answers_a_good_query(server)


@pytest.mark.parametrize("post", [True, False], ids=["post", "get"])
def test_doh_http1(server: Server, post: bool) -> None:
    context = client_context(server.pki, ("http/1.1",))
    context.check_hostname = False  # http.client sends the IP as SNI; the CA is still checked
    problems = []
    for query in hostile_queries(H1_PACKETS):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", server.doh, timeout=5, context=context
        )
        if post:
            headers = {"content-type": "application/dns-message"}
            connection.request("POST", "/dns-query", body=query, headers=headers)
        else:
            connection.request("GET", _target(query))
        response = connection.getresponse()
        body = response.read()
        connection.close()
        if message := _doh_problem(query, response.status, body):
            problems.append(f"{message}: query {query.hex()} answer {body.hex()}")
    assert not problems, f"{len(problems)} problems, the first: " + "\n".join(problems[:5])
    _answers_a_good_query(server)
