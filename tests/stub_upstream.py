"""A small real authoritative DNS server for tests, on loopback port 0, UDP and TCP.

Usage (any test; the ``stub`` fixture in tests/conftest.py does this for you)::

    from tests.stub_upstream import StubUpstream
    with StubUpstream() as stub:            # 127.0.0.1, a free port, same port for UDP and TCP
        ... query stub.address ("127.0.0.1:PORT") ...
        stub.mode = "drop"                  # misbehave (see MODES)
        assert stub.count("www.example.test", "A") == 1

The zone (names are case-insensitive; every TTL in ``TTL``):

=============================  ===================================================
``example.test``, ``*.example.test``  A 192.0.2.1, AAAA 2001:db8::1, TTL 300
``nx.example.test`` (and below)       NXDOMAIN, SOA TTL 60 MINIMUM 30 (negative TTL 30)
``nodata.example.test``               NOERROR, no answer, SOA in authority
``cname.example.test``                CNAME c2 -> CNAME target (A 192.0.2.7); c2 and
                                      target also answer on their own (a resolver may chase)
``big.example.test`` TXT              ~2.2 KB: TC=1 over UDP, complete over TCP
``huge.example.test`` TXT             ~5 KB (only over TCP)
``short.example.test``                A 192.0.2.9 with TTL 1
``*.ttl<N>.example.test``             A 192.0.2.10 with TTL N
unknown types at any zone name        NOERROR/NODATA with the SOA
class CH ``version.bind`` TXT         "lachan-test-stub"; other CH names REFUSED
anything outside example.test         NXDOMAIN with the root's SOA (like a recursor)
=============================  ===================================================

The server runs in a daemon thread with its own asyncio event loop; attribute writes from
the test thread (``mode``, ``delay``) are plain assignments read per query, which is safe
under the GIL and takes effect from the next query.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ZONE = dns.name.from_text("example.test.")
SOA_TEXT = "ns.example.test. hostmaster.example.test. 2026112801 3600 600 86400 30"
ROOT_SOA_TEXT = "a.root-servers.net. nstld.verisign-grs.com. 2026112800 1800 900 604800 86400"
TTL = {"default": 300, "soa": 60, "negative": 30, "short": 1}
BIG_TXT_STRINGS = 22  # 22 strings of 100 bytes: ~2.3 KB, above any sane UDP size
HUGE_TXT_STRINGS = 50  # ~5 KB

# Misbehaviour modes: what the stub does with every query while ``mode`` is set.
MODES = (
    "normal",  # answer from the zone
    "drop",  # black hole: never answer
    "slow",  # answer after ``delay`` seconds
    "garbage",  # right ID and question, then random bytes
    "noise",  # entirely random bytes (not even a DNS header)
    "wrong_id",  # a correct answer with a different ID
    "wrong_question",  # a correct answer for another name
    "servfail",
    "refused",
    "truncated_bytes",  # a correct answer cut short in the middle of a record
    "tc_always",  # over UDP: TC=1 with no records; TCP answers normally
    "flap",  # alternately up and down every ``flap_period`` seconds (starts up)
    "udp_dead",  # UDP dropped; TCP still answers
    "mutate",  # right ID and question, then a correct answer with random bytes changed
)


def _pick_port(host: str, family: int, wanted: int = 0) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same free port (retrying the rare clash)."""
    for _ in range(100):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((host, wanted))
        port = udp.getsockname()[1]
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, port))
        except OSError:
            udp.close()
            tcp.close()
            if wanted:
                raise
            continue
        return udp, tcp
    raise RuntimeError("no free port with both UDP and TCP available")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, stub: StubUpstream) -> None:
        self.stub = stub
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.stub.udp_sources[addr[1]] += 1
        reply, delay = self.stub.reply_to(data, "udp")
        if reply is None or self.transport is None:
            return
        if delay:
            asyncio.get_running_loop().call_later(delay, self._send, reply, addr)
        else:
            self._send(reply, addr)

    def _send(self, reply: bytes, addr: tuple) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class StubUpstream:
    """The stub server; a context manager (``start``/``stop`` also work)."""

    def __init__(self, host: str = "127.0.0.1", seed: int = 1, port: int = 0) -> None:
        self.host = host
        self.port = port  # 0: a free one; else this one (to bring a "dead" upstream back)
        self.mode = "normal"
        self.delay = 2.0
        self.flap_period = 0.5
        self.queries: Counter[tuple[str, str]] = Counter()  # (qname lowercase, type) -> n
        self.by_transport: Counter[str] = Counter()
        self.received: list[bytes] = []  # raw query messages, newest last (bounded)
        self.udp_sources: Counter[int] = Counter()  # source port -> UDP queries from it
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closers: list[object] = []

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def address(self) -> str:
        """HOST:PORT as lachan's --upstream takes it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> StubUpstream:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        udp, tcp = _pick_port(self.host, family, self.port)
        self.port = udp.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._open(udp, tcp), self._loop)
        future.result(timeout=10)
        return self

    async def _open(self, udp: socket.socket, tcp: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp)
        server = await asyncio.start_server(self._tcp_client, sock=tcp)
        self._closers = [transport, server]

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def close() -> None:
            for closer in self._closers:
                closer.close()  # type: ignore[attr-defined]

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop = None

    def __enter__(self) -> StubUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- counters -----------------------------------------------------------------------
    def count(self, name: str, rdtype: str | None = None) -> int:
        """Queries received for ``name`` (any letter case), of one type or all types."""
        name = name.lower().rstrip(".")
        with self._lock:
            return sum(n for (q, t), n in self.queries.items() if q == name and rdtype in (None, t))

    def reset(self) -> None:
        """Back to normal mode with zeroed counters."""
        self.mode = "normal"
        self.delay = 2.0
        with self._lock:
            self.queries.clear()
            self.by_transport.clear()
            self.received.clear()

    # -- answering ----------------------------------------------------------------------
    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(size)
                reply, delay = self.reply_to(data, "tcp")
                if delay:
                    await asyncio.sleep(delay)
                if reply is not None:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def reply_to(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        """(reply bytes or None for silence, delay in seconds) for one query."""
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None, 0.0
        question = query.question[0] if query.question else None
        with self._lock:
            self.by_transport[transport] += 1
            self.received.append(data)
            del self.received[:-1000]
            if question is not None:
                key = (
                    question.name.to_text().lower().rstrip("."),
                    dns.rdatatype.to_text(question.rdtype),
                )
                self.queries[key] += 1
        mode = self.mode
        if mode == "flap":
            down = int((time.monotonic() - self._started) / self.flap_period) % 2 == 1
            mode = "drop" if down else "normal"
        if mode == "drop" or (mode == "udp_dead" and transport == "udp"):
            return None, 0.0
        if mode == "noise":
            return self._random.randbytes(self._random.randint(1, 80)), 0.0
        response = answer(query)
        if mode in ("servfail", "refused"):
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL if mode == "servfail" else dns.rcode.REFUSED)
        if mode == "wrong_question" and question is not None:
            other = dns.message.make_query("other.example.test.", question.rdtype)
            response = answer(other)
            response.id = query.id
        wire = response.to_wire(max_size=65535)
        return self._misbehave(wire, query, mode, transport), self.delay if mode == "slow" else 0.0

    def _misbehave(
        self, wire: bytes, query: dns.message.Message, mode: str, transport: str
    ) -> bytes:
        if mode == "wrong_id":
            return ((query.id + 1) & 0xFFFF).to_bytes(2, "big") + wire[2:]
        if mode == "garbage":
            # Passes the ID and question checks, then fails to parse: the hard case.
            head = wire[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
            return head + wire[12 : _question_end(wire)] + self._random.randbytes(30)
        if mode == "mutate":
            return self._mutated(wire)
        if mode == "truncated_bytes":
            return wire[: max(_question_end(wire) + 5, len(wire) - 7)]
        limit = max(512, query.payload) if query.edns >= 0 else 512
        if transport == "udp" and (mode == "tc_always" or len(wire) > limit):
            return _tc_only(wire)
        return wire

    def _mutated(self, wire: bytes) -> bytes:
        """Header flags/counts and everything after the question changed at random."""
        rng = self._random
        end = _question_end(wire)
        head, rest = bytearray(wire[:end]), bytearray(wire[end:])
        for _ in range(rng.randint(1, 6)):
            if rest and rng.random() < 0.8:
                rest[rng.randrange(len(rest))] = rng.choice((0, 0xC0, 0xFF, rng.randrange(256)))
            else:
                at = rng.choice((3, 7, 9, 11))
                head[at] = rng.choice((0, 1, 2, 0xFF, rng.randrange(256)))
        if rng.random() < 0.3:
            del rest[rng.randint(0, len(rest)) :]
        return bytes(head + rest)


def _question_end(wire: bytes) -> int:
    pos = 12
    while wire[pos]:
        pos += wire[pos] + 1
    return pos + 5


def _tc_only(wire: bytes) -> bytes:
    """The answer cut back to header and question with TC=1 (RFC 2181 9 style)."""
    end = _question_end(wire)
    flags = ((wire[2] << 8) | wire[3]) | 0x0200
    return wire[:2] + flags.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x00\x00\x00" + wire[12:end]


def _soa(owner: dns.name.Name, text: str, ttl: int) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, ttl, "IN", "SOA", text)


def answer(query: dns.message.Message) -> dns.message.Message:
    """The zone's answer to a well-formed query (pure: no modes, no counters)."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    q = query.question[0]
    if q.rdclass == dns.rdataclass.CH:
        return _chaos(response, q)
    if q.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    name = q.name
    if not name.is_subdomain(ZONE):
        response.flags &= ~dns.flags.AA
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(_soa(dns.name.root, ROOT_SOA_TEXT, 60))
        return response
    _zone_answer(response, q.name, q.rdtype)
    return response


def _chaos(response: dns.message.Message, q: dns.rrset.RRset) -> dns.message.Message:
    if q.name == dns.name.from_text("version.bind.") and q.rdtype == dns.rdatatype.TXT:
        response.answer.append(dns.rrset.from_text(q.name, 0, "CH", "TXT", '"lachan-test-stub"'))
    else:
        response.set_rcode(dns.rcode.REFUSED)
    return response


def _zone_answer(response: dns.message.Message, name: dns.name.Name, rdtype: int) -> None:
    rel = name.relativize(ZONE).to_text().lower()
    labels = rel.split(".")
    soa = _soa(ZONE, SOA_TEXT, TTL["soa"])
    if labels[-1] == "nx":
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(soa)
        return
    if rel in ("cname", "c2"):
        chain = [("cname", "c2"), ("c2", "target")][0 if rel == "cname" else 1 :]
        for owner, target in chain:
            response.answer.append(
                dns.rrset.from_text(
                    f"{owner}.example.test.", 300, "IN", "CNAME", f"{target}.example.test."
                )
            )
        name = dns.name.from_text("target.example.test.")
        if rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.7"))
        else:
            response.authority.append(soa)
        return
    records = _records(name, rel, labels, rdtype)
    if records is None:
        response.authority.append(soa)  # NODATA (RFC 2308 2.2)
    else:
        response.answer.append(records)


def _records(
    name: dns.name.Name, rel: str, labels: list[str], rdtype: int
) -> dns.rrset.RRset | None:
    if rel == "nodata":
        return None
    if rdtype == dns.rdatatype.TXT and rel in ("big", "huge"):
        count = BIG_TXT_STRINGS if rel == "big" else HUGE_TXT_STRINGS
        rdatas = [f'"{i:03d}{"x" * 97}"' for i in range(count)]
        return dns.rrset.from_text(name, TTL["default"], "IN", "TXT", *rdatas)
    ttl = TTL["default"]
    address = "192.0.2.1"
    if rel == "target":
        address = "192.0.2.7"
    elif rel == "short":
        ttl, address = TTL["short"], "192.0.2.9"
    elif len(labels) >= 2 and labels[-1].startswith("ttl") and labels[-1][3:].isdigit():
        ttl, address = int(labels[-1][3:]), "192.0.2.10"
    if rdtype == dns.rdatatype.A:
        return dns.rrset.from_text(name, ttl, "IN", "A", address)
    if rdtype == dns.rdatatype.AAAA:
        return dns.rrset.from_text(name, ttl, "IN", "AAAA", "2001:db8::1")
    if rdtype == dns.rdatatype.TXT:
        return dns.rrset.from_text(name, ttl, "IN", "TXT", f'"{rel}"')
    return None


# -- the server under test, as a subprocess ----------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def lachan_command() -> list[str]:
    """The installed ``lachan`` console script, or ``python -m resolver.cli`` from the checkout."""
    script = Path(sys.executable).parent / "lachan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resolver.cli"]


def free_port(hosts: tuple[str, ...] = ("127.0.0.1", "::1")) -> int:
    """A port free for both UDP and TCP on every host (released again: a small race)."""
    for _ in range(100):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        held = []
        try:
            for host in hosts:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    sock = socket.socket(family, kind)
                    held.append(sock)
                    sock.bind((host, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return port
    raise RuntimeError("no free port")


def raw_udp(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = 2.0) -> bytes | None:
    """Send one datagram, return the first reply or None after ``timeout``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, (host, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


# A header-only query with qdcount 0: lachan answers FORMERR without asking any upstream.
PING = b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"


class LachanProcess:
    """``lachan serve`` on a free loopback port (127.0.0.1 and ::1), stderr kept in a file."""

    def __init__(
        self,
        workdir: Path,
        upstreams: list[str],
        config: str | None = None,
        ipv6: bool = True,
        log_level: str = "info",
    ) -> None:
        self.workdir = workdir
        self.port = free_port(("127.0.0.1", "::1") if ipv6 else ("127.0.0.1",))
        self.host = "127.0.0.1"
        args = lachan_command() + ["serve", "--listen", f"127.0.0.1:{self.port}"]
        if ipv6:
            args += ["--listen", f"[::1]:{self.port}"]
        for upstream in upstreams:
            args += ["--upstream", upstream]
        if config is not None:
            path = workdir / f"lachan-{self.port}.yaml"
            path.write_text(config, encoding="utf-8")
            args += ["--config", str(path)]
        args += ["--log-level", log_level]
        self.args = args
        self.stderr_path = workdir / f"lachan-{self.port}.stderr"
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped = False  # stop() was called (a test may stop it on purpose)
        self.log_level = log_level

    # A generous default: the first start on a machine compiles the bundled index (about
    # 10 s on one idle core since UT1's lists are bundled, more on a shared CI box); the
    # loop below returns as soon as lachan answers, so a healthy start never waits for it.
    def start(self, timeout: float = 60.0) -> LachanProcess:
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        answered_at: float | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lachan exited {self.process.returncode}:\n{self.stderr()}")
            # Its log line, written once every piece is wired (DoT and DoH, metrics, the
            # ledger: their modules are imported only then), says it is ready; a server
            # that drops 127.0.0.1 (acl.action: drop) answers no probe, so it is enough.
            if "lachan serving on" in self.stderr():
                return self
            if answered_at is None and raw_udp(self.port, PING, timeout=0.1) is not None:
                answered_at = time.monotonic()
            if answered_at is not None:
                if self.log_level not in ("debug", "info") or time.monotonic() > answered_at + 10:
                    return self  # no info line will come: plain DNS answering is the sign
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"lachan did not answer within {timeout}s:\n{self.stderr()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def assert_clean_log(self) -> None:
        """No traceback and no logged exception so far."""
        log = self.stderr()
        assert "Traceback" not in log and " ERROR " not in log, f"lachan logged an error:\n{log}"

    def stop(self) -> int | None:
        """SIGTERM (SIGKILL after 5 s); the exit status."""
        self.stopped = True
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode

    def __enter__(self) -> LachanProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
