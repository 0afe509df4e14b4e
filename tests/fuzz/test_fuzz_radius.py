"""Malformed RADIUS accounting input: decoding never raises, the listener keeps answering."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resolver.subscribers.radius import RESULTS, Request, decode
from resolver.subscribers.radius_listen import RadiusListener, open_radius
from resolver.subscribers.settings import RadiusSettings
from resolver.subscribers.store import FileStore
from tests.subscribers.radius_packets import DICTIONARY, SECRET, accounting

SETTINGS = settings(max_examples=400, deadline=500, suppress_health_check=[HealthCheck.too_slow])
RADIUS = RadiusSettings(
    "127.0.0.1", 0, Path("unused"), (ipaddress.ip_network("127.0.0.0/8"),), "User-Name"
)
VALID = accounting(
    "Start", User_Name="line-1", Framed_IP_Address="100.64.0.7",
    Delegated_IPv6_Prefix="2001:db8:100::/56", Class=b"x",
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid request with a few bytes changed and maybe cut short, or plain noise."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@SETTINGS
@given(mutated())
@example(VALID[:20])
@example(VALID[:4] + bytes(16) + b"\x08\x00")  # an attribute shorter than its own header
@example(b"\x04\x01\xff\xff" + bytes(16))  # a length beyond the datagram
def test_decoding_any_bytes_gives_a_request_or_a_reason(raw: bytes) -> None:
    result = decode(raw, "127.0.0.1", SECRET, RADIUS, DICTIONARY)
    assert isinstance(result, Request) or result in RESULTS


def test_the_listener_survives_a_bounded_burst_of_garbage(tmp_path: Path) -> None:
    async def scenario() -> bytes | None:
        listener = RadiusListener(RADIUS, SECRET, FileStore(tmp_path / "s.json"))
        transport = await open_radius(RADIUS, listener)
        port = transport.get_extra_info("sockname")[1]
        noise = random.Random(15)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(300):
                if i % 20 == 0:  # let the loop read: the socket buffer holds only so many
                    await asyncio.sleep(0.01)
                data = bytearray(VALID)
                data[noise.randrange(len(data))] = noise.randrange(256)
                sock.sendto(bytes(data[: noise.randrange(len(data) + 1)]), ("127.0.0.1", port))
            await asyncio.sleep(0.2)
            sock.sendto(VALID, ("127.0.0.1", port))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            reply = None
            for _ in range(100):  # skip replies to mutations that stayed valid
                reply = await asyncio.wait_for(loop.sock_recv(sock, 4096), 2.0)
                if reply[1] == VALID[1] and reply[4:20] != bytes(16):
                    break
        transport.close()
        assert sum(listener.results.values()) >= 300, repr(sorted(listener.results.items()))
        return reply

    reply = asyncio.run(scenario())
    assert reply is not None and reply[0] == 5  # Accounting-Response
