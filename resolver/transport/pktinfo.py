"""UDP on a wildcard bind (0.0.0.0, ::) where a query's destination address picks the profile.

``clients.listeners`` maps the address a query arrived on to a profile. On a socket bound to
a wildcard address that is the packet's destination, which only the kernel knows: IP_PKTINFO
(IPv4) and IPV6_RECVPKTINFO (IPv6) hand it over with each datagram (recvmsg ancillary data),
and the answer goes out from that same address (sendmsg with the same ancillary data), as a
client expects of its resolver. Each destination gets its own UdpListener, so the hot path
inside it is unchanged; sockets that need no destination never come here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import sys
from collections.abc import Iterable
from typing import Any

from ..pipeline import Resolver
from .udp import UdpListener

log = logging.getLogger(__name__)

WILDCARDS = frozenset({"0.0.0.0", "::"})
# Linux's value (netinet/in.h); Python 3.11 does not name it. None: not known here.
IP_PKTINFO: int | None = getattr(socket, "IP_PKTINFO", 8 if sys.platform == "linux" else None)
_MAX_DESTINATIONS = 1024  # a host has few addresses; bound the table all the same
_BURST = 64  # datagrams read per wake-up before the loop serves others


def destination_known(family: int) -> bool:
    """Whether this platform can tell a wildcard socket's destination address per datagram."""
    if family == socket.AF_INET6:
        return hasattr(socket, "IPV6_RECVPKTINFO") and hasattr(socket, "IPV6_PKTINFO")
    return IP_PKTINFO is not None


def _levels(family: int) -> tuple[int, int]:
    if family == socket.AF_INET6:
        return socket.IPPROTO_IPV6, socket.IPV6_PKTINFO
    assert IP_PKTINFO is not None
    return socket.IPPROTO_IP, IP_PKTINFO


def enable(sock: socket.socket) -> None:
    """Ask the kernel for each datagram's destination address (before any is received)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        assert IP_PKTINFO is not None
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)


def parse_destination(family: int, ancillary: list[tuple[int, int, bytes]]) -> tuple[str, bytes]:
    """(destination address, pktinfo to send the reply with) from recvmsg's ancillary data;
    ("", b"") when the kernel gave none."""
    level, kind = _levels(family)
    for cmsg_level, cmsg_type, data in ancillary:
        if cmsg_level != level or cmsg_type != kind:
            continue
        if family == socket.AF_INET6 and len(data) >= 20:
            # in6_pktinfo: the address, then the interface (kept: link-local needs it)
            return socket.inet_ntop(socket.AF_INET6, data[:16]), bytes(data[:20])
        if family == socket.AF_INET and len(data) >= 12:
            # in_pktinfo: interface, local (spec_dst), header destination; reply from it
            dst = data[8:12]
            return socket.inet_ntop(socket.AF_INET, dst), b"\0\0\0\0" + dst + b"\0\0\0\0"
    return "", b""


class _ReplyFrom:
    """The transport a destination's UdpListener answers through: from that address."""

    def __init__(self, sock: socket.socket, pktinfo: bytes) -> None:
        self._sock = sock
        self._ancillary = [(*_levels(sock.family), pktinfo)] if pktinfo else []
        self.closing = False

    def sendto(self, data: bytes, addr: tuple) -> None:
        try:
            self._sock.sendmsg([data], self._ancillary, 0, addr)
        except OSError as exc:  # a full buffer or an unreachable client: that answer is lost
            log.debug("UDP send to %s failed: %s", addr[0], exc)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


class PktinfoListener:
    """A wildcard UDP socket read with recvmsg; one UdpListener per destination address."""

    def __init__(self, resolver: Resolver, sock: socket.socket, port: int) -> None:
        self._resolver = resolver
        self._sock = sock
        self._port = port
        self._by_destination: dict[str, UdpListener] = {}
        self._space = socket.CMSG_SPACE(20)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        enable(self._sock)
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._sock
        for _ in range(_BURST):
            try:
                data, ancillary, _, addr = sock.recvmsg(65535, self._space)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP errors for earlier replies: nothing to do
                log.debug("UDP receive error: %s", exc)
                return
            self._listener(*parse_destination(sock.family, ancillary)).datagram_received(data, addr)

    def _listener(self, destination: str, pktinfo: bytes) -> UdpListener:
        listener = self._by_destination.get(destination)
        if listener is None:
            if len(self._by_destination) >= _MAX_DESTINATIONS:
                self._by_destination.clear()
            where = destination or self._sock.getsockname()[0]
            listener = UdpListener(self._resolver, (where, self._port))
            listener.connection_made(_ReplyFrom(self._sock, pktinfo))  # type: ignore[arg-type]
            self._by_destination[destination] = listener
        return listener

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        for listener in self._by_destination.values():
            listener.close()
        self._sock.close()


def needs_destination(sock: socket.socket, clients: object) -> bool:
    """Whether this socket must learn each datagram's destination: a wildcard bind, with
    listener-based profiles configured, on a platform that can tell it."""
    host = sock.getsockname()[0]
    mapped = getattr(clients, "listeners", None) or getattr(clients, "listener_hosts", None)
    return host in WILDCARDS and bool(mapped) and destination_known(sock.family)


def mapping_problems(listen: Iterable[Any], clients: Any, source: str) -> list[str]:
    """One line per ``clients.listeners`` entry no query can ever match: no ``listen``
    receives that address (and port), or only a wildcard bind does on a platform that cannot
    tell a datagram's destination."""
    binds = [(_normal(b.host), b.port) for b in listen]
    wanted = [(a, p) for a, p in clients.listeners] + [(a, None) for a in clients.listener_hosts]
    problems = []
    for address, port in wanted:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        fits = [h for h, p in binds if port in (None, p) and (":" in h) == (":" in address)]
        key = (
            address
            if port is None
            else (f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
        )
        if address in fits:
            continue
        if not any(h in WILDCARDS for h in fits):
            problems.append(f"{source}: clients.listeners.{key}: no listen address receives it")
        elif not destination_known(family):
            problems.append(
                f"{source}: clients.listeners.{key}: listen is a wildcard and this platform "
                "cannot tell a query's destination address: listen on the address itself"
            )
    return problems


def _normal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def blind_wildcards(protocols: Iterable[object], clients: Any) -> list[str]:
    """The wildcard UDP listeners serving without destinations while ``clients`` maps
    listeners (after a reload added the mapping: it needs a restart to apply there)."""
    if not (clients.listeners or clients.listener_hosts):
        return []
    where = [getattr(p, "_listener", ("", 0)) for p in protocols if isinstance(p, UdpListener)]
    return [f"{host}:{port}" for host, port in where if host in WILDCARDS]
