"""Tests for resolver/forward.py's handling of attempt sockets against a real scripted upstream
on loopback: forged replies (wrong ID, wrong source, wrong letter case) are never believed,
and every attempt's descriptor is closed whether it was answered, timed out or refused."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import socket
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.rrset
import pytest

from resolver.forward import Dispatcher, Exchange, tcp_exchange
from resolver.querystate import parse_reply
from resolver.response import ScannedAnswer
from resolver.upstream import ForwardPolicy, UpstreamAddress, build_upstream_query
from resolver.wire import WireError, text_to_wire
from tests.stub_upstream import answer

FORGED = "198.51.100.66"


class Forger:
    """An upstream that answers each query with the datagrams ``script`` names, in order:
    ``real`` (the zone's answer), ``wrong_id``, ``other_port`` (right ID and question, from
    another socket) and ``wrong_case`` (right ID, question in other letter case); the forged
    ones carry an A record for FORGED. ``scripts`` gives a script per query, the last kept."""

    def __init__(self, *scripts: tuple[str, ...]) -> None:
        self.scripts = list(scripts)
        self.asked: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = UpstreamAddress("127.0.0.1", self.sock.getsockname()[1])
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, source = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            self.asked.append(query.question[0].name.to_text())
            script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
            for kind in script:
                sender = self.other if kind == "other_port" else self.sock
                sender.sendto(self._reply(query, data, kind), source)

    def _reply(self, query: dns.message.Message, data: bytes, kind: str) -> bytes:
        if kind == "real":
            return answer(query).to_wire()
        forged = dns.message.make_response(query)
        name = query.question[0].name
        forged.answer.append(dns.rrset.from_text(name, 300, "IN", "A", FORGED))
        wire = bytearray(forged.to_wire())
        if kind == "wrong_id":
            wire[0] ^= 0x01
        elif kind == "wrong_case":
            end = 12 + len(name.to_wire() or b"")
            wire[12:end] = bytes(wire[12:end]).swapcase()
        return bytes(wire)

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()
        self.other.close()


@pytest.fixture
def forger_factory() -> Iterator[type[Forger]]:
    made: list[Forger] = []

    class Made(Forger):
        def __init__(self, *scripts: tuple[str, ...]) -> None:
            super().__init__(*scripts)
            made.append(self)

    yield Made
    for forger in made:
        forger.close()


def resolve(dispatcher: Dispatcher, names: list[str]) -> list[ScannedAnswer | None]:
    """Start an exchange per name at once; their outcomes, in order."""

    async def run() -> list[ScannedAnswer | None]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in names]
        dispatcher.complete = lambda exchange, got: exchange.waiters[0].set_result(got)
        for name, future in zip(names, futures, strict=True):
            key = text_to_wire(name) + b"\x00\x01\x00\x01\x00"
            exchange = Exchange(key, build_upstream_query(key, 0, False, 1232))
            exchange.waiters.append(future)
            dispatcher.start(exchange)
        return list(await asyncio.gather(*futures))

    return asyncio.run(run())


def dispatcher(*addresses: UpstreamAddress, timeout: float = 1.0) -> Dispatcher:
    policy = ForwardPolicy(attempt_timeout=timeout)
    return Dispatcher(addresses, policy, time.monotonic, parse_reply, lambda e, a: None)


def a_record(got: ScannedAnswer | None) -> str:
    assert got is not None and got.ancount == 1
    return ".".join(str(b) for b in got.body[-4:])


def test_forged_replies_with_a_wrong_id_or_source_are_not_believed(
    forger_factory: type[Forger],
) -> None:
    forger = forger_factory(("wrong_id", "other_port", "real"))
    engine = dispatcher(forger.address)
    try:
        [got] = resolve(engine, ["www.longer-name.example.test"])
        assert a_record(got) == "192.0.2.1"
        # The wrong ID was read and counted; the other port's never reached a socket.
        assert engine.upstreams[0].mismatched == 1
    finally:
        engine.close()


def test_a_reply_in_the_wrong_letter_case_is_not_believed_and_the_name_asked_again(
    forger_factory: type[Forger],
) -> None:
    forger = forger_factory(("wrong_case",), ("real",))
    engine = dispatcher(forger.address)
    try:
        [got] = resolve(engine, ["www.longer-name.example.test"])
        assert a_record(got) == "192.0.2.1"
        assert engine.upstreams[0].mismatched == 1 and not engine.upstreams[0].caps
        first, second = forger.asked
        assert first.lower() == second and first != second  # 0x20, then plain lowercase
    finally:
        engine.close()


def open_fds() -> int:
    gc.collect()  # earlier tests' garbage may hold descriptors until a collection
    return len(os.listdir("/proc/self/fd"))


def test_every_attempt_closes_its_socket_answered_timed_out_or_refused(
    forger_factory: type[Forger],
) -> None:
    answering = forger_factory(("real",))
    silent = forger_factory(())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        refused = UpstreamAddress("127.0.0.1", gone.getsockname()[1])
    before = open_fds()
    engine = dispatcher(answering.address, timeout=0.5)  # two attempts: a 1 s budget
    assert all(resolve(engine, [f"a{i}.example.test" for i in range(300)]))
    engine.targets[0].upstream.address = silent.address  # the label stays; that is fine here
    engine.targets[0].sockaddr = dispatcher(silent.address).targets[0].sockaddr
    assert resolve(engine, [f"t{i}.example.test" for i in range(20)]) == [None] * 20
    engine.targets[0].sockaddr = dispatcher(refused).targets[0].sockaddr
    assert resolve(engine, [f"r{i}.example.test" for i in range(100)]) == [None] * 100
    assert len(engine.sockets) == 0
    assert open_fds() == before + 1  # the epoll set alone
    engine.close()
    assert open_fds() == before


def test_a_dispatcher_follows_its_callers_to_a_new_event_loop_left_open_or_closed(
    forger_factory: type[Forger],
) -> None:
    forger = forger_factory(("real",))
    engine = dispatcher(forger.address)

    async def ask() -> ScannedAnswer | None:
        done = asyncio.get_running_loop().create_future()
        engine.complete = lambda _exchange, got: done.set_result(got)
        key = text_to_wire("www.example.test") + b"\x00\x01\x00\x01\x00"
        engine.start(Exchange(key, build_upstream_query(key, 0, False, 1232)))
        return await asyncio.wait_for(done, 3)

    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        for loop in (first, second, first):  # neither closed: each must get the replies
            assert a_record(loop.run_until_complete(ask())) == "192.0.2.1"
        second.close()
        assert all(resolve(engine, ["www.example.test"]))  # asyncio.run: yet another loop
    finally:
        engine.close()
        first.close()
        second.close()


def test_the_timeout_queue_keeps_its_entries_out_of_the_collectors_lists() -> None:
    # About as many leave as arrive, so the young count stayed flat while ~1 s of them
    # (15,000 at full load) piled up for one young collection (tests/test_gc_settings.py).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        d = dispatcher(UpstreamAddress("127.0.0.1", silent.getsockname()[1]), timeout=0.05)

        async def run() -> None:
            key = text_to_wire("quiet.example") + b"\x00\x01\x00\x01\x00"
            d.start(Exchange(key, build_upstream_query(key, 0, False, 1232)))
            assert d._deadlines and not gc.is_tracked(d._deadlines[-1])
            d.close()

        asyncio.run(run())


def _frame(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


# What a hostile upstream sends over TCP (after a TC=1 over UDP) for the answer ``good``.
TCP_REPLIES = {
    "zero-length frame": lambda good, rng: b"\x00\x00",
    "frame cut, then closed": lambda good, rng: b"\x00\x64" + good[:10],
    "frame cut, then silent": lambda good, rng: b"\x00\x64" + good[:10] + b"HANG",
    "length prefix past the data": lambda good, rng: b"\xff\xff" + good,
    "shorter than a header": lambda good, rng: _frame(good[:5]),
    "wrong ID": lambda good, rng: _frame(bytes((good[0] ^ 0xFF,)) + good[1:]),
    "wrong question": lambda good, rng: _frame(good[:13] + b"X" + good[14:]),
    "closed at once": lambda good, rng: b"",
    "random bytes": lambda good, rng: rng.randbytes(rng.randint(1, 300)),
    "random frame": lambda good, rng: _frame(rng.randbytes(rng.randint(0, 300))),
    "mutated answer": lambda good, rng: _frame(
        bytes(b ^ (1 << rng.randrange(8)) if rng.random() < 0.05 else b for b in good)
    ),
}


@pytest.mark.parametrize("kind", TCP_REPLIES)
def test_a_hostile_tcp_upstream_fails_the_attempt_with_an_error_the_dispatcher_catches(
    kind: str,
) -> None:
    # Dispatcher._tcp turns OSError, TimeoutError, WireError and IncompleteReadError into a
    # failed attempt (the next one, or SERVFAIL); anything else would escape its task.
    rng = random.Random(kind)
    key = text_to_wire("www.example.test") + b"\x00\x01\x00\x01\x00"
    message = b"\x12\x34" + build_upstream_query(key, 0, False, 1232)[2:]
    good = answer(dns.message.from_wire(message)).to_wire()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(2 + len(message))
        reply = TCP_REPLIES[kind](good, rng)
        writer.write(reply.removesuffix(b"HANG"))
        if reply.endswith(b"HANG"):
            await asyncio.sleep(5)
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            for _ in range(5 if kind.startswith(("random", "mutated")) else 1):
                started = time.monotonic()
                try:
                    reply = await tcp_exchange(
                        UpstreamAddress("127.0.0.1", port), message, key[:-1], 0.5
                    )
                except (OSError, TimeoutError, WireError, asyncio.IncompleteReadError):
                    pass
                else:  # a mutation may leave a well-framed answer: the scanner judges it then
                    assert kind == "mutated answer" and reply[:2] == message[:2], reply
                assert time.monotonic() - started < 1.5

    asyncio.run(run())
