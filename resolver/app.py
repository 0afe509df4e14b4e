"""Server lifecycle: build the pipeline from config, open listeners, serve, reload, drain, stop.

Reads top to bottom as startup -> serve -> reload -> graceful drain -> shutdown. One Resolver
lives as long as the process; a reload swaps its serving snapshot, never its sockets or cache.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .acl import Acl
from .cache import Cache
from .config import Config, Listener
from .errors import LachanError
from .list_freshness import recorded_sources, refresh_lists, watch_list_freshness
from .pipeline import LoggedStats, Resolver
from .ratelimit import RateLimiter
from .reloadable import applied_config, restart_needed
from .sdnotify import Notifier
from .services import (
    _close_quietly,
    _start_watchdog,
    every,
    open_audit,
    open_console,
    settle_memory,
    start_metrics,
)
from .state import ServingState, build_state
from .stats import LabelSets, Stats
from .transport.encrypted import EncryptedListeners
from .transport.pktinfo import PktinfoListener, blind_wildcards, needs_destination
from .transport.tcp import TcpConnection, TcpServerState, tcp_limiter
from .transport.udp import UdpListener

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

    def __post_init__(self) -> None:
        self.tcp_state = TcpServerState(
            self.config.tcp, tcp_limiter(self.config.ratelimit), self.resolver.stats
        )
        self.encrypted = EncryptedListeners(self.resolver, self.tcp_state)  # DoT, DoH

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
        await self.encrypted.start(self.config.encrypted, self.config.source, self.reuse_port)
        log.info(
            "lachan serving on %s, forwarding to %s",
            ", ".join(str(x) for x in self.config.listeners),
            ", ".join(str(u) for u in self.config.upstreams),
        )

    async def _open_tcp(self, listener: Listener) -> tuple[UdpListener, socket.socket]:
        """Bind the listener's UDP socket (its port names the TCP one) and serve TCP on it."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        udp_socket = _udp_socket(listener, family, self.reuse_port)
        where = (listener.host, udp_socket.getsockname()[1])
        server = await loop.create_server(
            lambda: TcpConnection(self.resolver, self.tcp_state, where),
            host=listener.host,
            port=where[1],
            family=family,
            reuse_port=self.reuse_port or None,
            backlog=1024,
        )
        self.tcp_servers.append(server)
        return UdpListener(self.resolver, where), udp_socket

    async def reload(self, load: ConfigLoader, record: bool = True) -> bool:
        """Re-read config, profiles and lists; swap them in if valid, else keep serving.

        The new state (and any index compile) is built in a thread, off the event loop, so
        queries keep being answered from the old state until the one-reference swap.
        ``record`` is False in workers: the supervisor counts reloads once for all of them.
        """
        loop = asyncio.get_running_loop()
        try:
            config = await loop.run_in_executor(None, load)
            state = await loop.run_in_executor(None, build_state, config)
        except (LachanError, OSError) as exc:  # OSError: e.g. a full disk while compiling
            log.error("reload failed, still serving the previous configuration: %s", exc)
            if record:
                self.resolver.stats.record_reload(False, time.time())
            return False
        warn_restart_needed(self.config, config)
        self.config = applied_config(self.config, config)
        self.resolver.cache.policy = self.config.cache  # what changed in it: cache.prefetch
        for blind in blind_wildcards(self.udp, state.clients):
            log.warning(
                "reload: clients.listeners on wildcard %s take effect after a restart", blind
            )
        self.resolver.swap_state(state, Acl(config.acl))
        self.encrypted.reload(config.encrypted, config.source)  # devices, certificate
        gc.freeze()  # the new snapshot is long-lived too (no collect: that would pause serving)
        self.resolver.stats.labels = label_sets(self.config, state)
        feed_index(self.resolver.stats, state)
        if record:
            self.resolver.stats.record_reload(True, time.time())
        log.info("reloaded: policy %s, index %s", state.policy_digest, state.index_digest or "none")
        return True

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


async def serve(
    config: Config,
    load: ConfigLoader,
    ready: Callable[[Server], None] | None = None,
    wallclock: Callable[[], float] = time.time,
) -> None:
    """Run a server until SIGTERM or SIGINT (or ``server.stopping``); SIGHUP reloads.

    ``wallclock`` is the time policy decisions see (schedules); tests inject a fake one.
    Signal handlers are only installed in the main thread (tests run servers in threads).
    """
    notifier = Notifier.from_env(unset=True)
    state = await asyncio.get_running_loop().run_in_executor(None, build_state, config)
    stats = (LoggedStats if config.querylog else Stats)(label_sets(config, state))
    stats.workers = 1  # one process serves; the supervisor sets this when there are workers
    feed_index(stats, state)
    settle_memory()
    server = Server(config, build_resolver(config, state, stats, wallclock=wallclock))
    querylog = server.resolver.querylog
    await server.start()
    metrics = start_metrics(config, stats.snapshot, lambda: server.config)
    server.follow_allows()
    if config.subscribers is not None:  # ISP subscriber mode: nothing of it loads otherwise
        from .subscribers.runtime import start_subscribers

        await start_subscribers(config, server.resolver, metrics, radius=True)
    watch_list_freshness(config, stats)
    audit = open_audit(config, stats.snapshot, lambda: server.resolver.state)
    console = await open_console(
        config, lambda: server.config, lambda: server.resolver.state, stats.snapshot
    )
    loop = asyncio.get_running_loop()
    if audit is not None:
        every(loop, min(10.0, config.audit.period), audit.tick)  # a 1 s demo period too
    if querylog is not None:
        log.warning(
            "query log on: %s holds personal data (Decree 13/2023/ND-CP)", querylog.config.path
        )
        every(loop, 1.0, lambda: loop.run_in_executor(None, querylog.flush))
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.stopping.set)
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.create_task(_reload(server, load, notifier))
        )
    if config.lists.enabled and config.lists.refresh_interval:
        every(
            loop,
            config.lists.refresh_interval,
            lambda: loop.create_task(refresh_lists(config, stats, lambda: server.reload(load))),
        )
    _start_watchdog(notifier)
    notifier.ready(status="serving")
    if ready is not None:
        ready(server)
    try:
        await server.stopping.wait()
    finally:
        log.info("lachan stopping")
        notifier.stopping()
        await server.stop()
        _close_quietly(audit, "the audit ledger's open period")
        _close_quietly(querylog, "the query log")
        if metrics is not None:
            metrics.stop()
        if console is not None:
            await console.stop()


async def _reload(server: Server, load: ConfigLoader, notifier: Notifier) -> None:
    notifier.reloading(status="reloading")
    ok = await server.reload(load)
    notifier.ready(status="serving" if ok else "serving; last reload failed")


def run(config: Config, load: ConfigLoader) -> None:
    """Serve on uvloop when it is installed (about 4x the stdlib loop's throughput)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(serve(config, load))
        return
    uvloop.run(serve(config, load))
