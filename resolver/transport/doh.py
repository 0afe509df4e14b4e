"""DNS over HTTPS (RFC 8484): one TLS connection, HTTP/2 or HTTP/1.1 as ALPN chose, one pipeline."""

from __future__ import annotations

import asyncio
import logging

from .. import devices, reply
from ..encrypted_config import EncryptedSettings
from ..pipeline import ClientState, Miss, Resolver
from ..ratelimit import Verdict
from ..stats import DOH
from ..wire import REFUSED, SERVFAIL, Query, WireError
from ..wire_query import parse_query
from . import doh_ng
from .doh_h1 import H1Session
from .doh_h2 import H2Session
from .doh_ng import NgSession
from .doh_request import CONTENT_TYPE, Respond, extract, is_query, max_age
from .tcp import TcpServerState
from .tls import READ_BUFFER

log = logging.getLogger(__name__)
PASS = Verdict.PASS
TRIM_AFTER = 1.0  # seconds without a request before an HTTP/2 session's buffers are trimmed
_CONTENT_TYPE = CONTENT_TYPE.encode()


class DohConnection(asyncio.BufferedProtocol):
    """One DoH client. Counts against the TCP connection limit; closes when idle.

    A buffered protocol, so that the SSL transport decrypts into one buffer shared by all
    connections (tls.READ_BUFFER).
    """

    loop: asyncio.AbstractEventLoop  # from connection_made on

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
        self.session: NgSession | H2Session | H1Session | None = None
        self.inflight = 0
        self.last_activity = 0.0
        self._clients: dict[str | None, ClientState | devices.Refusal] = {}
        self._clients_epoch = -1
        self._idle: asyncio.TimerHandle | None = None
        self._trimmed = -1.0  # last_activity when the session was last trimmed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        if len(self.state.connections) >= self.state.policy.max_connections:
            self.state.rejected += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        self.state.connections.add(self)  # anything with close()
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == "h2":
            self.session = NgSession(self) if doh_ng.available() else H2Session(self)
        else:
            self.session = H1Session(self)
        self.last_activity = self.loop.time()
        self._idle = self.loop.call_later(min(TRIM_AFTER, self._timeout()), self._on_idle)

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        if self.session is not None and self.transport is not None:
            self.session.receive(bytes(READ_BUFFER[:nbytes]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        if isinstance(self.session, NgSession):
            self.session.close()  # nghttp2's memory is not the garbage collector's
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write_records(self, records: list[bytes]) -> None:
        """Each item its own TLS record, all in one socket write (uvloop's and asyncio's SSL
        transports encrypt writelines() items one by one, then send the lot)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(records)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- one request ------------------------------------------------------------------------
    def serve(
        self, method: str, target: str, content_type: str, body: bytes, respond: Respond
    ) -> None:
        """Answer one HTTP request: an HTTP error, or 200 with the DNS answer (now or later)."""
        resolver = self.resolver
        self.last_activity = self.loop.time()
        status, query, device = extract(method, target, content_type, body)
        if status != 200:
            respond(status, _ALLOW if status == 405 else [], b"")
            return
        try:
            client = self._client(device)
            verdict = None
            if type(client) is ClientState and client.limit is not None:
                # A device's own buckets (devices.DeviceLimits); else the address's.
                verdict = client.limit(self.peer)
            memo = None if type(client) is not ClientState else client.stream_memo
            if memo is not None and (verdict is None or verdict is PASS):
                # The same bytes answered within the last second: resend under this ID.
                prepared = memo.get(query[2:])
                if prepared is not None and prepared[0] > resolver.clock():
                    resolver.count_prepared(prepared, DOH)
                    _respond_dns(respond, query[:2] + prepared[1], prepared[1])
                    return
            if not is_query(query):
                respond(400, [], b"")  # not a DNS query at all: an HTTP error, not a DNS one
                return
            result = self._answer(query, client, verdict)
        except Exception:
            log.exception("error answering a DoH query")
            if not is_query(query):
                respond(400, [], b"")
                return
            result = _error(resolver, query, SERVFAIL)
        if isinstance(result, Miss):
            self._start_miss(result, respond)
        else:
            _respond_dns(respond, result)

    def _answer(
        self, query: bytes, client: ClientState | devices.Refusal, verdict: Verdict | None
    ) -> bytes | Miss:
        resolver = self.resolver
        if isinstance(client, devices.Refusal):
            refused = devices.refuse(resolver, query, client, DOH)
            return refused if refused is not None else _error(resolver, query, REFUSED)
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
            self.last_activity = self.loop.time()
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
        # A quiet HTTP/2 session first gives its buffers' pages back (NgSession.trim).
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self.last_activity
        if not self.inflight and quiet >= self._timeout():
            self.close()
            return
        delay = self._timeout() - quiet
        if not self.inflight and self._trimmed != self.last_activity:
            if quiet < TRIM_AFTER:
                delay = min(delay, TRIM_AFTER - quiet)
            else:
                if isinstance(self.session, NgSession):
                    self.session.trim()
                self._trimmed = self.last_activity
        self._idle = loop.call_later(max(0.05, delay), self._on_idle)


_ALLOW = [(b"allow", b"GET, POST")]
_HEADERS: dict[bytes, list[tuple[bytes, bytes]]] = {}  # by answer less its ID, see below


def _respond_dns(respond: Respond, response: bytes, key: bytes | None = None) -> None:
    """Status 200 with the answer. Its headers depend only on the bytes after the ID, and
    most answers are resent many times (prepared answers hand over the very same key
    object), so they are kept rather than the TTLs scanned again for every request."""
    if key is None:
        key = response[2:]
    headers = _HEADERS.get(key)
    if headers is None:
        if len(_HEADERS) >= 4096:
            _HEADERS.clear()
        age = b"max-age=%d" % max_age(response)
        headers = _HEADERS[key] = [(b"content-type", _CONTENT_TYPE), (b"cache-control", age)]
    respond(200, headers, response)


def _error(resolver: Resolver, data: bytes, rcode: int) -> bytes:
    """``rcode`` for a message ``is_query`` accepted (one with a DNS error of its own too)."""
    query: Query | None
    try:
        query = parse_query(data)
    except WireError as exc:
        query = exc.query
    return reply.error(data, rcode, query, resolver.policy.udp_size)
