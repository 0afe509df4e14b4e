"""DNS over TLS (RFC 7858, RFC 8310): the TCP transport behind TLS, with device IDs from SNI."""

from __future__ import annotations

import asyncio
import logging

from .. import devices, reply
from ..encrypted_config import EncryptedSettings
from ..pipeline import ClientState, Miss, Resolver
from ..ratelimit import Verdict
from ..stats import DOT
from ..wire import SERVFAIL
from .tcp import TcpServerState, TcpStream
from .tls import READ_BUFFER, device_from_sni, server_name_of

log = logging.getLogger(__name__)
PASS = Verdict.PASS


class DotConnection(TcpStream, asyncio.BufferedProtocol):
    """One DoT client: framing, pipelining, limits and idle timeout are TCP's (shared state).

    Buffered, so that TLS reads decrypt into tls.READ_BUFFER rather than a new 256 KiB object.
    """

    def __init__(
        self,
        resolver: Resolver,
        state: TcpServerState,
        listener: tuple[str, int],
        settings: EncryptedSettings,
        limits: devices.DeviceLimits | None = None,
    ) -> None:
        super().__init__(resolver, state, listener)
        self._settings = settings
        self._limits = limits
        self._device: str | None = None
        self._refusal: devices.Refusal | None = None

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(READ_BUFFER[:nbytes]))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called once the handshake is done, so the SNI callback has run.
        sni = server_name_of(transport.get_extra_info("ssl_object"))
        self._device = device_from_sni(sni, self._settings.tls.server_name)
        super().connection_made(transport)
        self._expect_proxy = False  # a PROXY v2 header would come before TLS, not inside it

    def _answer(self, message: bytes) -> None:
        resolver = self._resolver
        try:
            if self._client is None or self._client_epoch != resolver.clients_epoch:
                self._choose(resolver)
            if self._refusal is not None:
                refused = devices.refuse(resolver, message, self._refusal, DOT)
                if refused is not None:
                    self._send(refused)
                return
            client = self._client
            assert client is not None
            # A device's own buckets (devices.DeviceLimits); else the address's, as for TCP.
            verdict = client.limit(self._peer) if client.limit is not None else None
            result = resolver.respond(message, client, self._peer, DOT, verdict)
        except Exception:
            log.exception("error answering a DoT query")
            self.close()
            return
        if isinstance(result, Miss):
            self._start_miss(resolver, result)
        elif result is not None:
            self._send(result)

    def _choose(self, resolver: Resolver) -> None:
        chosen = devices.choose(
            resolver, self._settings, self._device, self._peer, self._listener, self._limits
        )
        self._client_epoch = resolver.clients_epoch
        self._refusal = chosen if isinstance(chosen, devices.Refusal) else None
        if isinstance(chosen, devices.Refusal):  # a placeholder: refused before it is asked
            chosen = ClientState(resolver.state.clients.default, None, False, False)
        self._client = chosen

    def _start_miss(self, resolver: Resolver, miss: Miss) -> None:
        if not resolver.start_miss(miss, DOT, self._miss_done):
            query = miss.query
            self._send(reply.error(query.data, SERVFAIL, query, resolver.policy.udp_size))
            return
        self._inflight += 1
        if self._inflight >= self._state.policy.max_inflight_per_connection and self._transport:
            self._transport.pause_reading()
            self._paused = True
