"""The accounting listener over a real UDP socket: answers after storing, never before."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path

from resolver.subscribers.radius_listen import RadiusListener, open_radius
from resolver.subscribers.replica import Replica
from resolver.subscribers.settings import RadiusSettings
from resolver.subscribers.store import FileStore
from tests.subscribers.radius_packets import SECRET, accounting

RADIUS = RadiusSettings(
    "127.0.0.1", 0, Path("unused"), (ipaddress.ip_network("127.0.0.0/8"),), "User-Name"
)


async def exchange(port: int, raw: bytes) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        sock.send(raw)
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 4096), 1.0)
        except TimeoutError:
            return None


def test_a_late_stop_does_not_unbind_the_addresses_next_holder(tmp_path: Path) -> None:
    store, replica = FileStore(tmp_path / "s.json"), Replica()

    async def scenario() -> None:
        listener = RadiusListener(RADIUS, SECRET, store, replica)
        transport = await open_radius(RADIUS, listener)
        port = transport.get_extra_info("sockname")[1]
        for line in ("line-1", "line-2"):  # the address moves from line-1 to line-2
            start = accounting("Start", User_Name=line, Framed_IP_Address="100.64.0.7")
            assert await exchange(port, start) is not None
            replica.replace(*store.load())  # what the follower does within a second
        stop = accounting("Stop", User_Name="line-1", Framed_IP_Address="100.64.0.7")
        assert await exchange(port, stop) is not None  # acknowledged, and ignored
        transport.close()

    asyncio.run(scenario())
    assert store.load()[1]["100.64.0.7/32"].subscriber == "line-2"


def test_nothing_is_acknowledged_while_the_store_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "s.json").mkdir()  # unreadable as a file: every write fails (even as root)
    store = FileStore(tmp_path / "s.json")

    async def scenario() -> RadiusListener:
        listener = RadiusListener(RADIUS, SECRET, store)
        transport = await open_radius(RADIUS, listener)
        port = transport.get_extra_info("sockname")[1]
        start = accounting("Start", User_Name="line-1", Framed_IP_Address="100.64.0.7")
        assert await exchange(port, start) is None  # the NAS will retransmit
        transport.close()
        return listener

    listener = asyncio.run(scenario())
    assert listener.results["store_error"] == 1 and listener.results["ok"] == 0


def test_a_burst_is_stored_in_few_writes_and_every_request_answered(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s.json")
    writes: list[int] = []
    change = store.change

    def counted(changes: list) -> None:  # type: ignore[type-arg]
        writes.append(len(changes))
        change(changes)

    store.change = counted  # type: ignore[method-assign]

    async def scenario() -> int:
        listener = RadiusListener(RADIUS, SECRET, store)
        transport = await open_radius(RADIUS, listener)
        port = transport.get_extra_info("sockname")[1]
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(("127.0.0.1", port))
            for i in range(200):
                sock.send(accounting("Start", User_Name=f"l{i}", Framed_IP_Address=f"100.64.1.{i}"))
            replies = 0
            while replies < 200:
                await asyncio.wait_for(loop.sock_recv(sock, 4096), 5.0)
                replies += 1
        transport.close()
        return replies

    assert asyncio.run(scenario()) == 200
    assert len(store.load()[1]) == 200
    assert sum(writes) == 200 and len(writes) < 200  # batched, none lost


def test_the_accounting_socket_asks_for_a_receive_buffer_that_absorbs_bursts(
    tmp_path: Path,
) -> None:
    from resolver.subscribers.radius_listen import RECEIVE_BUFFER

    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    listener = RadiusListener(RADIUS, SECRET, FileStore(tmp_path / "s.json"))

    async def scenario() -> int:
        transport = await open_radius(RADIUS, listener)
        size = transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        transport.close()
        return int(size)

    # Linux doubles what it grants (bookkeeping), up to net.core.rmem_max.
    assert asyncio.run(scenario()) == 2 * min(RECEIVE_BUFFER, rmem_max)
