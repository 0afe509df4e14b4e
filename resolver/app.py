"""The listeners of one process and the pipeline behind them: build, start, apply a reload, stop.

Reads top to bottom as build -> start -> reload -> graceful drain. One Resolver lives as long
as the process; a reload swaps its serving snapshot, never its sockets or cache. What runs
beside the listeners, and for which role, is wired by resolver.compose (the one composition
root), which also re-reads the config on SIGHUP and hands the result to ``Server.apply``.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .acl import Acl
from .cache import Cache
from .config import Config, Listener
from .list_freshness import recorded_sources
from .pipeline import Resolver
from .ratelimit import RateLimiter
from .reloadable import restart_needed
from .state import ServingState, build_state
from .stats import LabelSets, Stats
from .transport.pktinfo import PktinfoListener, blind_wildcards, needs_destination
from .transport.tcp import TcpConnection, TcpServerState, tcp_limiter
from .transport.udp import UdpListener

if TYPE_CHECKING:  # DoT and DoH: wired by resolver.compose only when configured
    from .transport.encrypted import EncryptedListeners

log = logging.getLogger(__name__)

ConfigLoader = Callable[[], Config]


def label_sets(config: Config, state: ServingState) -> LabelSets:
    """The bounded label vocabularies metrics may carry, from config and lists."""
    return LabelSets(
        categories=frozenset(getattr(state.index, "categories", ()))
        | {"keyword", "deny", "bypass"},
        profiles=frozenset(state.profiles),
        upstreams=frozenset(str(u) for u in config.upstreams),
        sources=frozenset(getattr(getattr(state.index, "info", None), "sources", {}) or {})
        | recorded_sources(config),
    )


def feed_index(stats: Stats, state: ServingState) -> None:
    """The index in force, for metrics: when it was built and its entries per source."""
    stats.index_built = state.index_built_at
    info = getattr(state.index, "info", None)
    sources = info.sources if info is not None else {}
    stats.set_index_entries(
        {(meta["category"], source): int(meta["entries"]) for source, meta in sources.items()}
    )


def build_resolver(
    config: Config,
    state: ServingState,
    stats: Stats,
    clock: Callable[[], float] = time.monotonic,
    wallclock: Callable[[], float] = time.time,
) -> Resolver:
    """The query pipeline for a config whose upstreams are already resolved."""
    cache = Cache(config.cache, clock, stats)
    stats.cache_size = cache.__len__
    stats.cache_bytes = lambda: cache.bytes
    limiter = RateLimiter(config.ratelimit, clock=clock) if config.ratelimit else None
    querylog = None
    if config.querylog:
        from .querylog import QueryLog

        querylog = QueryLog(config.querylog)
    return Resolver(
        cache,
        config.upstreams,
        config.forward,
        config.serve,
        clock,
        state,
        stats,
        Acl(config.acl),
        limiter,
        wallclock,
        querylog,
    )


@dataclass
class Server:
    """All listeners of one process, sharing one Resolver."""

    config: Config
    resolver: Resolver
    reuse_port: bool = False
    udp: list[UdpListener] = field(default_factory=list)
    tcp_servers: list[asyncio.base_events.Server] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    encrypted: EncryptedListeners | None = None  # DoT, DoH: start_encrypted

    def __post_init__(self) -> None:
        self.tcp_state = TcpServerState(
            self.config.tcp, tcp_limiter(self.config.ratelimit), self.resolver.stats
        )

    async def start(self) -> None:
        # TCP listens everywhere before any UDP socket answers: whoever sees a UDP answer
        # (a readiness probe, a front end's health check) may fall back to TCP at once.
        loop = asyncio.get_running_loop()
        bound = [await self._open_tcp(listener) for listener in self.config.listeners]
        for protocol, udp_socket in bound:
            if needs_destination(udp_socket, self.resolver.state.clients):
                wildcard = PktinfoListener(self.resolver, udp_socket, udp_socket.getsockname()[1])
                wildcard.start(loop)  # clients.listeners on a wildcard bind: see pktinfo.py
                self.udp.append(wildcard)  # type: ignore[arg-type]
                continue
            await loop.create_datagram_endpoint(lambda p=protocol: p, sock=udp_socket)  # type: ignore[misc]
            self.udp.append(protocol)

    async def start_encrypted(self) -> None:
        """DoT and DoH beside the plain listeners, behind the same Resolver.

        compose wires them only when configured: their stack (h2, h11, nghttp2 through ctypes,
        cryptography's x509 for the expiry metric) cost ~45 ms of every start when imported
        whether used or not.
        """
        from .transport.encrypted import EncryptedListeners

        self.encrypted = EncryptedListeners(self.resolver, self.tcp_state)
        await self.encrypted.start(self.config.encrypted, self.config.source, self.reuse_port)

    def announce(self) -> None:
        """The line operators and tests wait for: written once the process is fully wired
        (compose.Process.run), so /metrics, the console and the ledger are up when it shows."""
        log.info(
            "lachan serving on %s, forwarding to %s",
            ", ".join(str(x) for x in self.config.listeners),
            ", ".join(str(u) for u in self.config.upstreams),
        )

    async def _open_tcp(self, listener: Listener) -> tuple[UdpListener, socket.socket]:
        """Bind the listener's UDP socket (its port names the TCP one) and serve TCP on it.

        Port 0 takes the port the kernel gives the UDP socket; that same number may be taken
        on TCP (another socket's local port), so it is tried again with a new one, a few times.
        """
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        tries = _EPHEMERAL_TRIES if listener.port == 0 else 1
        while True:
            tries -= 1
            udp_socket = _udp_socket(listener, family, self.reuse_port)
            where = (listener.host, udp_socket.getsockname()[1])
            try:
                server = await loop.create_server(
                    lambda where=where: TcpConnection(self.resolver, self.tcp_state, where),
                    host=listener.host,
                    port=where[1],
                    family=family,
                    reuse_port=self.reuse_port or None,
                    backlog=1024,
                )
            except OSError as exc:
                udp_socket.close()
                if exc.errno == errno.EADDRINUSE and tries:
                    continue
                raise
            self.tcp_servers.append(server)
            return UdpListener(self.resolver, where), udp_socket

    def apply(self, config: Config, fresh: Config, state: ServingState) -> None:
        """Swap in a reloaded state: ``config`` is what a reload applies (resolver.reloadable),
        ``fresh`` the config as read. The caller (resolver.compose) re-reads and validates."""
        self.config = config
        self.resolver.cache.policy = config.cache  # what changed in it: cache.prefetch
        for blind in blind_wildcards(self.udp, state.clients):
            log.warning(
                "reload: clients.listeners on wildcard %s take effect after a restart", blind
            )
        self.resolver.swap_state(state, Acl(fresh.acl))
        if self.encrypted is not None:
            self.encrypted.reload(fresh.encrypted, fresh.source)  # devices, certificate
        gc.freeze()  # the new snapshot is long-lived too (no collect: that would pause serving)

    async def apply_allows(self) -> None:
        """Rebuild the profiles with the temporary allows in force, same config and index."""
        loop = asyncio.get_running_loop()
        index = self.resolver.state.index
        state = await loop.run_in_executor(None, build_state, self.config, index)
        self.resolver.swap_state(state, Acl(self.config.acl))
        log.info("temporary allows applied: policy %s", state.policy_digest)

    def follow_allows(self) -> None:
        """Apply `lachan allow` and the console's changes within a second, and expiries."""
        from .allows_watch import follow_allows
        from .state import allows_store

        follow_allows(allows_store(self.config), self.apply_allows)

    async def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, let in-flight queries finish within ``grace``, then close."""
        for server in self.tcp_servers:
            server.close()
        if self.encrypted is not None:
            self.encrypted.close()
        deadline = time.monotonic() + grace
        while self.resolver.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for protocol in self.udp:
            protocol.close()
        self.tcp_state.close_all()
        self.resolver.close()


def warn_restart_needed(old: Config, new: Config) -> None:
    """One log line naming each changed setting a reload cannot apply, and why."""
    changed = restart_needed(old, new)
    if changed:
        log.warning("reload: these changes take effect after a restart: %s", "; ".join(changed))


_EPHEMERAL_TRIES = 8  # port 0: UDP ports the kernel gives before one free on TCP too


def _udp_socket(listener: Listener, family: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Bigger buffers absorb bursts instead of dropping them while the loop is busy.
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
        except OSError:
            pass
    try:
        sock.bind((listener.host, listener.port))
    except OSError as exc:  # name the address: "in use" alone does not say which listener
        sock.close()
        raise OSError(exc.errno, f"{listener}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock
