"""Opens, reloads and closes the encrypted listeners (DoT, DoH) of one serving process."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from ..ddr import DDR_NAME, svcb_rdata
from ..devices import DeviceLimits
from ..encrypted_config import EncryptedSettings, check_profiles
from ..errors import ConfigError
from ..pipeline import Resolver
from ..tls_check import read_leaf
from .doh import DohConnection
from .dot import DotConnection
from .tcp import TcpServerState
from .tls import ALPN_DOH, ALPN_DOT, TlsContexts, keep_tls_buffers_mapped

log = logging.getLogger(__name__)


class EncryptedListeners:
    """The DoT and DoH servers; their connections count against the TCP connection limit."""

    def __init__(self, resolver: Resolver, tcp_state: TcpServerState) -> None:
        self.resolver = resolver
        self.tcp_state = tcp_state
        self.settings = EncryptedSettings()
        self.contexts: dict[str, TlsContexts] = {}
        self.servers: list[asyncio.base_events.Server] = []
        self.bound: list[tuple[str, str, int]] = []  # (kind, host, port) actually listening
        self.limits = DeviceLimits(resolver.ratelimit, resolver.clock)

    async def start(self, settings: EncryptedSettings, source: str, reuse_port: bool) -> None:
        if not settings.enabled:
            return
        check_profiles(settings, self.resolver.state.profiles, source)
        self.settings = settings
        keep_tls_buffers_mapped()  # idle connections: ~25 KiB each instead of ~47
        cert, key = settings.tls.cert, settings.tls.key
        assert cert is not None and key is not None  # the config reader insists
        for host, port in settings.listen_tls:
            contexts = self.contexts.setdefault("dot", TlsContexts(cert, key, ALPN_DOT))
            await self._open("dot", host, port, contexts, reuse_port)
        for host, port in settings.listen_https:
            contexts = self.contexts.setdefault("doh", TlsContexts(cert, key, ALPN_DOH))
            await self._open("doh", host, port, contexts, reuse_port)
        self._record_expiry(cert)
        self.advertise()
        log.info("encrypted DNS on %s", ", ".join(f"{k} {h}:{p}" for k, h, p in self.bound))

    async def _open(
        self, kind: str, host: str, port: int, contexts: TlsContexts, reuse_port: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        where = (host, port)
        kind_class = DotConnection if kind == "dot" else DohConnection

        def factory() -> asyncio.BaseProtocol:
            # self.settings at accept time: a reload's devices apply to new connections
            return kind_class(self.resolver, self.tcp_state, where, self.settings, self.limits)

        server = await loop.create_server(
            factory,
            host=host,
            port=port,
            family=socket.AF_INET6 if ":" in host else socket.AF_INET,
            ssl=contexts.listening,
            # A TLS handshake gets the idle timeout too: slowloris before the first query.
            ssl_handshake_timeout=self.tcp_state.policy.idle_timeout,
            reuse_port=reuse_port or None,
            backlog=1024,
        )
        self.servers.append(server)
        self.bound.append((kind, host, server.sockets[0].getsockname()[1]))

    def advertise(self) -> None:
        """Answer DDR queries (RFC 9462) in the serving state with our listeners."""
        blocks = self.resolver.state.blocks
        blocks.ddr, blocks.ddr_name = svcb_rdata(self.settings), DDR_NAME

    def reload(self, settings: EncryptedSettings, source: str) -> None:
        """New devices and certificate for new connections; listeners change on restart only."""
        if not self.servers:
            return
        self.advertise()  # the reload built new prepared answers: advertise there too
        try:
            check_profiles(settings, self.resolver.state.profiles, source)
            for contexts in self.contexts.values():
                contexts.reload(settings.tls.cert, settings.tls.key)
            if settings.tls.cert is not None:
                self._record_expiry(settings.tls.cert)
        except ConfigError as exc:
            log.error("reload: keeping the previous certificate and devices: %s", exc)
            return
        self.settings = settings

    def _record_expiry(self, cert: Path) -> None:
        """The expiry metric (an alert fires 14 days ahead: certbot renewals can fail), and a
        log line when it has passed: plain DNS is served, DoT and DoH clients refuse it."""
        expiry = read_leaf(cert).not_valid_after_utc.timestamp()
        self.resolver.stats.tls_certificate_expiry = expiry
        now = self.resolver.wallclock()
        if expiry <= now:
            log.warning(
                "tls.cert: %s expired %.0f days ago: DoT and DoH clients refuse it until it "
                "is replaced (then systemctl reload lachan); plain DNS is served",
                cert,
                (now - expiry) / 86400,
            )

    def close(self) -> None:
        for server in self.servers:
            server.close()
