"""The packet fuzzer: hostile packets against a real ``lachan serve`` on loopback.

``python -m tests.fuzz.run --packets N --seconds S [--seed X]`` (what ``make fuzz`` runs)
starts the stub upstream and lachan, sends seeded hostile packets over UDP and TCP in
batches, and after each batch checks that lachan still answers a normal query. It fails on a
crash, a hang, a traceback or error in lachan's log, any reply to a packet with QR=1, or a
reply that is not itself a DNS response. A failing batch is saved under tests/fuzz/corpus/
so it becomes a regression input (tests/fuzz/test_fuzz_server.py replays the corpus).
Every reply is also walked with dnspython's name decoder (structure: counts, names, pointers,
lengths, nothing trailing). With --hostile-upstream the stub mutates its answers as well.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query

from tests.fuzz.packets import packet
from tests.stub_upstream import LachanProcess, StubUpstream

CORPUS = Path(__file__).with_name("corpus")
BATCH = 2_000
MAX_UDP_REPLY = 1232  # lachan's EDNS size: no UDP reply may be larger (no amplification)


class FuzzFailure(AssertionError):
    """The server misbehaved; ``batch`` holds the packets of the failing batch."""

    def __init__(self, message: str, batch: list[bytes]) -> None:
        super().__init__(message)
        self.batch = batch


@dataclass
class Report:
    sent: int = 0
    replies: int = 0
    batches: int = 0
    seconds: float = 0.0
    tcp_frames: int = 0
    problems: list[str] = field(default_factory=list)


def fuzz(
    server: LachanProcess,
    packets: int,
    seconds: float,
    seed: int,
    upstream: StubUpstream | None = None,
) -> Report:
    """Send up to ``packets`` (or until ``seconds`` pass); raise FuzzFailure on misbehaviour.

    With ``upstream``, that stub also answers hostile (mutated answers) during each batch.
    """
    rng = random.Random(seed)
    report = Report()
    started = time.monotonic()
    with _socket() as normal, _socket() as reflect:
        while report.sent < packets and time.monotonic() - started < seconds:
            batch = [packet(rng) for _ in range(min(BATCH, packets - report.sent))]
            if upstream is not None:
                upstream.mode = "mutate"
            send_batch(server, batch, normal, reflect, report)
            if report.batches % 5 == 0:
                report.tcp_frames += send_tcp(server, batch[:200])
            if upstream is not None:
                upstream.mode = "normal"
            check_alive(server, batch, f"fuzz{report.batches}.example.test")
            report.batches += 1
    report.seconds = time.monotonic() - started
    return report


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.setblocking(False)
    return sock


def send_batch(
    server: LachanProcess,
    batch: list[bytes],
    normal: socket.socket,
    reflect: socket.socket,
    report: Report,
) -> None:
    address = ("127.0.0.1", server.port)
    for i, data in enumerate(batch):
        # Packets with QR=1 go out of their own socket: any reply arriving there is a bug.
        sock = reflect if len(data) > 2 and data[2] & 0x80 else normal
        try:
            sock.sendto(data, address)
        except BlockingIOError:
            time.sleep(0.001)
        report.sent += 1
        if i % 64 == 63:
            report.replies += _drain(normal, reflect, batch)
            time.sleep(0.0005)  # let the server keep up instead of overflowing its buffer
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:
        report.replies += _drain(normal, reflect, batch)


def _drain(normal: socket.socket, reflect: socket.socket, batch: list[bytes]) -> int:
    count = 0
    while True:
        try:
            reply = reflect.recv(65535)
        except BlockingIOError:
            break
        raise FuzzFailure(f"reply to a QR=1 packet: {reply[:40].hex()}", batch)
    while True:
        try:
            reply = normal.recv(65535)
        except BlockingIOError:
            return count
        count += 1
        if len(reply) < 12 or not reply[2] & 0x80 or len(reply) > MAX_UDP_REPLY:
            raise FuzzFailure(f"bad reply ({len(reply)} bytes): {reply[:40].hex()}", batch)
        try:
            record_types(reply)
        except (AssertionError, dns.exception.DNSException, IndexError) as exc:
            raise FuzzFailure(f"malformed reply ({exc!r}): {reply.hex()}", batch) from None


def record_types(wire: bytes) -> list[int]:
    """Walk a whole reply with dnspython's name decoder (an independent oracle of structure:
    counts, names, pointers, lengths, nothing trailing); the types of its records."""
    counts = [int.from_bytes(wire[i : i + 2], "big") for i in (4, 6, 8, 10)]
    assert counts[0] <= 1, "more than one question"
    pos = 12
    if counts[0]:
        _, used = dns.name.from_wire(wire, 12)
        pos += used + 4
    types = []
    for _ in range(sum(counts[1:])):
        _, used = dns.name.from_wire(wire, pos)
        pos += used
        assert pos + 10 <= len(wire), "record header cut"
        types.append(int.from_bytes(wire[pos : pos + 2], "big"))
        pos += 10 + int.from_bytes(wire[pos + 8 : pos + 10], "big")
        assert pos <= len(wire), "rdata cut"
    assert pos == len(wire), "bytes after the last record"
    return types


def send_tcp(server: LachanProcess, batch: list[bytes]) -> int:
    """The same packets framed on one TCP connection; answers are read and checked loosely."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(b"".join(len(p).to_bytes(2, "big") + p for p in batch if len(p) < 65536))
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65535):
                pass
        except (TimeoutError, ConnectionResetError):
            pass
    return len(batch)


def check_alive(server: LachanProcess, batch: list[bytes], name: str) -> None:
    if not server.alive():
        raise FuzzFailure(f"lachan exited {server.process and server.process.returncode}", batch)
    for _ in range(3):
        try:
            reply = dns.query.udp(
                dns.message.make_query(name, "A"), "127.0.0.1", port=server.port, timeout=2
            )
        except dns.exception.Timeout:
            continue
        if reply.answer and reply.answer[0][0].to_text() == "192.0.2.1":
            return
    raise FuzzFailure(f"lachan stopped answering after a batch ({name})", batch)


def save(batch: list[bytes], seed: int) -> Path:
    """A failing batch as a corpus file: 2-byte length + packet, repeated."""
    CORPUS.mkdir(exist_ok=True)
    path = CORPUS / f"crash-seed{seed}-{int(time.time())}.bin"
    path.write_bytes(b"".join(len(p).to_bytes(2, "big") + p for p in batch))
    return path


def load(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out = []
    while len(data) >= 2:
        size = int.from_bytes(data[:2], "big")
        out.append(data[2 : 2 + size])
        data = data[2 + size :]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__)
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--hostile-upstream", action="store_true", help="the upstream mutates its answers too"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, StubUpstream() as stub:
        server = LachanProcess(Path(tmp), [stub.address], ipv6=False, log_level="warning").start()
        try:
            hostile = stub if args.hostile_upstream else None
            report = fuzz(server, args.packets, args.seconds, args.seed, hostile)
            server.assert_clean_log()
        except FuzzFailure as failure:
            print(
                f"FAIL (seed {args.seed}): {failure}; batch saved to {save(failure.batch, args.seed)}"
            )
            print(server.stderr()[-4000:])
            return 1
        except AssertionError as failure:
            print(f"FAIL (seed {args.seed}): {failure}")
            return 1
        finally:
            server.stop()
    rate = report.sent / report.seconds if report.seconds else 0
    print(
        f"ok: seed {args.seed}, {report.sent} packets ({report.tcp_frames} also over TCP) in "
        f"{report.batches} batches, {report.seconds:.1f} s ({rate:.0f}/s), {report.replies} replies"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
