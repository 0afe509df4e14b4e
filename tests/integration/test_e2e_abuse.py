"""End to end: open-resolver protection and rate limits (issue 6) on loopback sources.

Two servers, lists off (these limits do not depend on them): one refuses clients outside its
access list and rate-limits the rest per /32 (and /24), one drops clients outside its list.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import dns.message
import pytest
from e2e_helpers import (
    InternetStub,
    LachanProcess,
    addresses,
    ask,
    dig,
    dig_status,
    ede,
    make_query,
    rcode,
    start_lachan,
    stop_checked,
    try_ask,
    udp_exchange,
    udp_socket,
)

from resolver.reply import ACL_REFUSED_TEXT as REFUSED_TEXT

REFUSE_CONFIG = """
site: {id: e2e-abuse, kind: isp}
lists: {enabled: false}
acl: {allow: [127.0.0.2/32, 127.0.0.3/32, 127.0.0.4/32]}
ratelimit:
  ipv4: [{prefix: 32, rate: 20, burst: 20}, {prefix: 24, rate: 400, burst: 400}]
  action: drop
"""
DROP_CONFIG = """
site: {id: e2e-abuse-drop, kind: isp}
lists: {enabled: false}
acl: {allow: [127.0.0.2/32], action: drop}
"""


@pytest.fixture(scope="module")
def stub() -> Iterator[InternetStub]:
    with InternetStub() as server:
        yield server


@pytest.fixture(scope="module")
def refusing(
    stub: InternetStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LachanProcess]:
    process = start_lachan(tmp_path_factory.mktemp("refuse"), stub.address, REFUSE_CONFIG)
    yield process
    stop_checked(process)


@pytest.fixture(scope="module")
def dropping(
    stub: InternetStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LachanProcess]:
    process = start_lachan(tmp_path_factory.mktemp("drop"), stub.address, DROP_CONFIG)
    yield process
    stop_checked(process)


@pytest.mark.parametrize("edns", [True, False])
def test_outside_the_acl_refused_with_ede18_and_no_amplification(
    refusing: LachanProcess, edns: bool
) -> None:
    for qtype in ("A", "TXT", "ANY"):
        query = make_query("big.example.test", qtype, edns=edns).to_wire()
        data = udp_exchange(refusing.port, query, "127.0.0.1")
        assert data is not None, qtype
        reply = dns.message.from_wire(data)
        assert rcode(reply) == "REFUSED" and not reply.answer, qtype
        # Only the EDE option (4 + 2 bytes and its text) may grow the answer beyond the query.
        growth = 6 + len(REFUSED_TEXT) if edns else 0
        assert len(data) <= len(query) + growth, (len(data), len(query))
        assert ede(reply) == ([(18, REFUSED_TEXT)] if edns else []), qtype
    # ::1 is outside the list too. Over TCP the connection is closed at accept, before it
    # can hold a connection slot (issue 11, finding 10).
    assert rcode(ask(refusing.port, "www.example.test", source="::1")) == "REFUSED"
    with pytest.raises((EOFError, ConnectionError)):
        ask(refusing.port, "www.example.test", tcp=True)
    assert dig_status(dig(refusing.port, "www.example.test")) == "REFUSED"


def test_inside_the_acl_served(refusing: LachanProcess) -> None:
    reply = ask(refusing.port, "www.example.test", source="127.0.0.2")
    assert addresses(reply) == ["192.0.2.1"]


def test_drop_action_sends_nothing(dropping: LachanProcess) -> None:
    for source in ("127.0.0.1", "127.0.0.3"):
        assert try_ask(dropping.port, "www.example.test", source=source, timeout=0.7) is None
    assert addresses(ask(dropping.port, "www.example.test", source="127.0.0.2")) == ["192.0.2.1"]


def _bad_packets() -> dict[str, bytes]:
    """One packet per error answer the parser can give (issue 11, finding 11)."""
    plain = make_query("www.example.test").to_wire()
    notimp = bytearray(plain)
    notimp[2] = (notimp[2] & 0x87) | (2 << 3)  # opcode STATUS
    badvers = make_query("www.example.test", edns=True).to_wire()
    opt = badvers.rfind(b"\x00\x00\x29")  # root owner, type OPT: version is 5 bytes on
    badvers = badvers[: opt + 6] + b"\x01" + badvers[opt + 7 :]
    return {
        "formerr": plain[:4] + b"\x00\x02" + plain[6:],  # qdcount 2
        "truncated question": plain[:-3],
        "notimp": bytes(notimp),
        "badvers": badvers,
        "refused meta type": make_query("www.example.test", "AXFR").to_wire(),
        "plain": plain,
    }


@pytest.mark.parametrize("kind", sorted(_bad_packets()))
def test_drop_action_is_silent_for_every_packet_a_denied_source_sends(
    dropping: LachanProcess, kind: str
) -> None:
    packet = _bad_packets()[kind]
    assert udp_exchange(dropping.port, packet, "127.0.0.3", timeout=0.5) is None, kind
    # The same bytes from the allowed source do get an answer: the packet is answerable.
    assert udp_exchange(dropping.port, packet, "127.0.0.2") is not None, kind


def flood(port: int, source: str, count: int, seconds: float, result: dict[str, int]) -> None:
    """Send ``count`` queries from ``source`` within about ``seconds``; count the replies."""
    wire = bytearray(make_query("flood.example.test").to_wire())
    with udp_socket(source) as sock:
        sock.setblocking(False)
        received = 0
        pause = seconds / count
        for i in range(count):
            wire[0:2] = (i & 0xFFFF).to_bytes(2, "big")
            sock.sendto(bytes(wire), ("127.0.0.1", port))
            time.sleep(pause)
            received += _drain(sock)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            received += _drain(sock)
            time.sleep(0.02)
    result["sent"], result["received"] = count, received


def _drain(sock: socket.socket) -> int:
    n = 0
    for _ in range(1000):  # bounded
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
        n += 1
    return n


def test_a_flood_does_not_starve_a_neighbour(refusing: LachanProcess) -> None:
    assert addresses(ask(refusing.port, "flood.example.test", source="127.0.0.2"))  # cached
    result: dict[str, int] = {}
    flooder = threading.Thread(
        target=flood, args=(refusing.port, "127.0.0.3", 1500, 1.5, result), daemon=True
    )
    flooder.start()
    answered = 0
    started = time.monotonic()
    for i in range(20):  # 20 queries over ~1.5 s: within the neighbour's own 20/s
        reply = try_ask(refusing.port, f"n{i}.example.test", source="127.0.0.4", timeout=1.0)
        answered += reply is not None and rcode(reply) == "NOERROR"
        time.sleep(0.05)
    flooder.join(timeout=10)
    assert not flooder.is_alive()
    assert time.monotonic() - started < 10
    assert answered >= 18, answered
    # The flooder got about its burst plus its rate, not its 1500 queries.
    assert result["sent"] == 1500
    assert result["received"] <= 20 + 20 * 3, result
