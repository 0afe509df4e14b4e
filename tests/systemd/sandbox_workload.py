"""What lachan does at run time, step by step, for the sandbox probe; prints "ok <step>"."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path


def _ok(step: str) -> None:
    print(f"ok {step}", flush=True)


def imports() -> None:
    import click  # noqa: F401
    import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
    import dnslib  # noqa: F401
    import prometheus_client  # noqa: F401
    import resolver._nametable  # noqa: F401  (lachan's C extension)
    import uvloop  # noqa: F401
    import yaml  # noqa: F401


def index_mmap(tmp: Path) -> None:
    from resolver.lists.build import SourceInput, build_index
    from resolver.lists.index import open_index
    from resolver.lists.match import ListAction
    from resolver.lists.rules import Rule, Scope

    rules = [Rule(f"example{i}.com", Scope.SUBTREE, ListAction.BLOCK) for i in range(2000)]
    path = build_index([SourceInput("s", "adult", rules)], ["adult"], tmp / "index")
    index = open_index(path)  # memory-mapped, probed by the C name table
    assert index.lookup("www.example7.com") is not None and len(index) == 2000


def ed25519_sign() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    record = hashlib.sha256(b"period record").digest()
    key.public_key().verify(key.sign(record), record)


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data[::-1], addr)  # type: ignore[attr-defined]


async def _serve_once() -> None:
    loop = asyncio.get_running_loop()
    hup = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.wait_for(hup.wait(), 5)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    transport, _ = await loop.create_datagram_endpoint(_Echo, sock=sock)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    await loop.sock_connect(client, sock.getsockname())
    await loop.sock_sendall(client, b"query")
    assert await asyncio.wait_for(loop.sock_recv(client, 512), 5) == b"yreuq"
    client.close()
    transport.close()
    await _tcp_roundtrip()
    await loop.run_in_executor(None, socket.getaddrinfo, "localhost", 53)
    await asyncio.wait_for(asyncio.sleep(0.01), 5)


async def _tcp_roundtrip() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(5))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "::1", 0, reuse_port=True)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("::1", port)
    writer.write(b"hello")
    assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
    writer.close()
    server.close()
    await server.wait_closed()


def uvloop_server() -> None:
    import uvloop

    uvloop.run(_serve_once())


def asyncio_server() -> None:
    asyncio.run(_serve_once())


def worker_processes() -> None:
    out = subprocess.run([sys.executable, "-c", "print(6*7)"], capture_output=True, timeout=30)
    assert out.stdout.strip() == b"42", out
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def threads_and_clocks() -> None:
    box: list[int] = []
    thread = threading.Thread(target=lambda: box.append(len(os.sched_getaffinity(0))))
    thread.start()
    thread.join(5)
    assert box and (os.cpu_count() or 0) >= 1
    import resource

    resource.getrlimit(resource.RLIMIT_NOFILE)


def sd_notify(tmp: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from resolver.sdnotify import Notifier

    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp / "notify"))
    server.settimeout(5)
    assert Notifier(str(tmp / "notify")).ready()
    assert server.recv(64) == b"READY=1\n"


def wx_refused() -> None:
    import mmap

    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        return
    raise AssertionError("a writable+executable mapping was allowed")


SERVE_TIMEOUT = 30.0  # seconds for each wait on the real server (start, reload, stop)


def _notified(server: socket.socket, key: bytes) -> list[bytes]:
    """sd_notify datagrams until one carries ``key``=1 (bounded by the socket timeout)."""
    seen = []
    for _ in range(50):
        message = server.recv(4096)
        seen.append(message)
        if key + b"=1" in message.split(b"\n"):
            return seen
    raise AssertionError(f"no {key!r}=1 in {seen}")


def _real_server(tmp: Path, upstream: str, workers: int) -> None:
    """`lachan serve` under the inherited filters: READY, answers, reload, SIGTERM, exit 0."""
    import dns.message
    import dns.query

    from tests.stub_upstream import free_port, lachan_command

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / f"notify-serve-{workers}"))
    notify.settimeout(SERVE_TIMEOUT)
    port = free_port(("127.0.0.1",))
    args = ["serve", "--listen", f"127.0.0.1:{port}", "--upstream", upstream]
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp / f"notify-serve-{workers}"))
    log = tmp / f"serve-{workers}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            lachan_command() + args + ["--workers", str(workers)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
        )  # fmt: skip
    try:
        _notified(notify, b"READY")
        # The server really runs filtered (mode 2 = seccomp filter), as under systemd.
        status = Path(f"/proc/{server.pid}/status").read_text()
        assert "Seccomp:\t2" in status, status
        for name, rdtype in (("status.lachan.arpa", "TXT"), ("www.example.test", "A")):
            reply = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port,
                                  timeout=5)  # fmt: skip
            assert reply.answer, reply.to_text()
        server.send_signal(signal.SIGHUP)
        _notified(notify, b"RELOADING")
        _notified(notify, b"READY")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=SERVE_TIMEOUT) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=5)
        notify.close()
    assert "Traceback" not in log.read_text(), log.read_text()


def lachan_serve(tmp: Path) -> None:
    """The real server, one process and then two workers, with its real blocklist index."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.stub_upstream import StubUpstream

    with StubUpstream() as stub:
        for workers in (1, 2):
            _real_server(tmp, stub.address, workers)


def run() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("imports", imports),
            ("index_mmap", lambda: index_mmap(tmp)),
            ("ed25519_sign", ed25519_sign),
            ("uvloop_server", uvloop_server),
            ("asyncio_server", asyncio_server),
            ("worker_processes", worker_processes),
            ("threads_and_clocks", threads_and_clocks),
            ("sd_notify", lambda: sd_notify(tmp)),
            ("wx_refused", wx_refused),
        ]
        # Opt-in (LACHAN_SANDBOX_SERVE=1; tests/integration/test_ops_sandbox.py sets it): the
        # whole server under the filters takes a few seconds more than the steps above.
        if os.environ.get("LACHAN_SANDBOX_SERVE") == "1":
            steps.append(("lachan_serve", lambda: lachan_serve(tmp)))
        for step, func in steps:
            func()
            _ok(step)
