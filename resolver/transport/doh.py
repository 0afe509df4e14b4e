"""DNS over HTTPS (RFC 8484): one TLS connection, HTTP/2 or HTTP/1.1 as ALPN chose, one pipeline."""

from __future__ import annotations

import asyncio
import logging

from .. import devices, synth
from ..encrypted_config import EncryptedSettings
from ..pipeline import ClientState, Miss, Resolver
from ..stats import DOH
from ..wire import REFUSED, SERVFAIL, parse_query
from .doh_h1 import H1Session
from .doh_h2 import H2Session
from .doh_request import CONTENT_TYPE, Respond, decode, max_age
from .tcp import TcpServerState

log = logging.getLogger(__name__)


class DohConnection(asyncio.Protocol):
    """One DoH client. Counts against the TCP connection limit; closes when idle."""

    def __init__(
        self,
        resolver: Resolver,
        state: TcpServerState,
        listener: tuple[str, int],
        settings: EncryptedSettings,
        limits: devices.DeviceLimits | None = None,
    ) -> None:
        self.resolver = resolver
        self.limits = limits
        self.state = state
        self.listener = listener
        self.settings = settings
        self.peer = ""
        self.transport: asyncio.Transport | None = None
        self.session: H2Session | H1Session | None = None
        self.inflight = 0
        self.last_activity = 0.0
        self._clients: dict[str | None, ClientState | devices.Refusal] = {}
        self._clients_epoch = -1
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        if len(self.state.connections) >= self.state.policy.max_connections:
            self.state.rejected += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        self.state.connections.add(self)  # anything with close()
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        self.session = H2Session(self) if alpn == "h2" else H1Session(self)
        self.last_activity = asyncio.get_running_loop().time()
        self._idle = asyncio.get_running_loop().call_later(self._timeout(), self._on_idle)

    def data_received(self, data: bytes) -> None:
        if self.session is not None and self.transport is not None:
            self.session.receive(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- one request ------------------------------------------------------------------------
    def serve(
        self, method: str, target: str, content_type: str, body: bytes, respond: Respond
    ) -> None:
        """Answer one HTTP request: an HTTP error, or 200 with the DNS answer (now or later)."""
        self.last_activity = asyncio.get_running_loop().time()
        decoded = decode(method, target, content_type, body)
        if decoded.status != 200:
            respond(decoded.status, [("allow", "GET, POST")] if decoded.allow else [], b"")
            return
        try:
            result = self._answer(decoded.query, decoded.device)
        except Exception:
            log.exception("error answering a DoH query")
            result = _error(self.resolver, decoded.query, SERVFAIL)
        if isinstance(result, Miss):
            self._start_miss(result, respond)
        else:
            _respond_dns(respond, result)

    def _answer(self, query: bytes, device: str | None) -> bytes | Miss:
        resolver = self.resolver
        client = self._client(device)
        if isinstance(client, devices.Refusal):
            refused = devices.refuse(resolver, query, client, DOH)
            return refused if refused is not None else _error(resolver, query, REFUSED)
        # A device's own buckets (devices.DeviceLimits); else the address's.
        verdict = client.limit(self.peer) if client.limit is not None else None
        result = resolver.respond(query, client, self.peer, DOH, verdict)
        # None (a dropped query: access list "drop", rate limit): HTTP must answer something.
        return _error(resolver, query, REFUSED) if result is None else result

    def _client(self, device: str | None) -> ClientState | devices.Refusal:
        epoch = self.resolver.clients_epoch
        if self._clients_epoch != epoch:  # a reload or a subscriber change: choose again
            self._clients, self._clients_epoch = {}, epoch
        client = self._clients.get(device)
        if client is None:
            if len(self._clients) >= 16:
                self._clients.clear()  # bounded: one connection naming many devices
            client = devices.choose(
                self.resolver, self.settings, device, self.peer, self.listener, self.limits
            )
            self._clients[device] = client
        return client

    def _start_miss(self, miss: Miss, respond: Respond) -> None:
        def deliver(response: bytes) -> None:
            self.inflight -= 1
            self.last_activity = asyncio.get_running_loop().time()
            _respond_dns(respond, response)

        if not self.resolver.start_miss(miss, DOH, deliver):
            _respond_dns(respond, _error(self.resolver, miss.query.data, SERVFAIL))
            return
        self.inflight += 1

    # -- idle and slow clients ----------------------------------------------------------------
    def _timeout(self) -> float:
        return self.state.policy.idle_timeout

    def _on_idle(self) -> None:
        # Only completed requests count as activity: a client trickling bytes of a request
        # (slowloris) or idling with open streams is closed after the idle timeout.
        if self.transport is None:
            return
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self.last_activity
        if self.inflight or quiet < self._timeout():
            self._idle = loop.call_later(max(0.05, self._timeout() - quiet), self._on_idle)
        else:
            self.close()


def _respond_dns(respond: Respond, response: bytes) -> None:
    headers = [("content-type", CONTENT_TYPE), ("cache-control", f"max-age={max_age(response)}")]
    respond(200, headers, response)


def _error(resolver: Resolver, data: bytes, rcode: int) -> bytes:
    return synth.error(data, rcode, parse_query(data), resolver.policy.udp_size)
