"""The HTTP/2 side of DoH, on the ``h2`` library: bounded streams, headers, bodies and resets."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .doh_request import BODY_WINDOW, MAX_MESSAGE, Owner, reason

MAX_STREAMS = 100  # concurrent requests per connection (SETTINGS_MAX_CONCURRENT_STREAMS)
MAX_HEADER_LIST = 8192  # bytes of decoded headers per request
MAX_RESETS = 200  # streams a client may reset per connection (HTTP/2 "rapid reset")


# Headers that RFC 9113 8.2.2 forbids in HTTP/2 (connection-specific); "te" is checked apart.
_CONNECTION_HEADERS = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_STATUS = {200: b"200"}
_PSEUDO = {b":method": 0, b":path": 1, b":scheme": 2, b":authority": 3}


class _Stream:
    __slots__ = ("fields", "body", "received")

    def __init__(self, fields: tuple[str, str, str]) -> None:
        self.fields = fields  # method, path, content type
        self.body = bytearray()
        self.received = 0  # DATA bytes not yet handed back to the flow-control windows


def request_fields(headers: list[tuple[bytes, bytes]]) -> tuple[str, str, str] | None:
    """(method, path, content type) of a request's header list; None when it is malformed.

    h2's own inbound validation is off (it was a quarter of h2's cost per request): this one
    pass checks what RFC 9113 8.1.1/8.2/8.3 make malformed, which the caller resets with
    PROTOCOL_ERROR: pseudo-headers unknown, repeated or after a regular field; a missing
    :method, :scheme or :path; upper-case or connection-specific field names.
    """
    pseudo: list[bytes | None] = [None, None, None, None]
    content_type = b""
    regular = False
    for name, value in headers:
        if name[:1] == b":":
            at = _PSEUDO.get(name)
            if regular or at is None or pseudo[at] is not None:
                return None
            pseudo[at] = value
            continue
        regular = True
        if name == b"content-type":
            content_type = value
        elif not name or name in _CONNECTION_HEADERS or not name.islower() and name.lower() != name:
            return None
        elif name == b"te" and value != b"trailers":
            return None
    method, path, scheme = pseudo[0], pseudo[1], pseudo[2]
    if method is None or not path or scheme is None:
        return None
    return (method.decode("latin-1"), path.decode("latin-1"), content_type.decode("latin-1"))


class _FrameGuard:
    """Refuses a frame whose header announces more than the limit, before h2 buffers it.

    h2 checks a frame's length only once the whole frame has arrived, so a header announcing
    16 MiB would make it buffer 16 MiB first; this reads just the 9-byte frame headers.
    """

    __slots__ = ("limit", "skip", "head")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.skip = 24  # the client connection preface (RFC 9113 3.4)
        self.head = bytearray()

    def ok(self, data: bytes) -> bool:
        at, end = 0, len(data)
        while at < end:
            if self.skip:
                step = min(self.skip, end - at)
                self.skip -= step
                at += step
                continue
            piece = data[at : at + 9 - len(self.head)]
            self.head += piece
            at += len(piece)
            if len(self.head) == 9:
                length = int.from_bytes(self.head[:3], "big")
                if length > self.limit:
                    return False
                self.skip = length
                self.head.clear()
        return True


class H2Session:
    """Streams of one HTTP/2 connection; each complete request goes to ``DohConnection.serve``.

    Memory is bounded by h2's limits plus ours: at most MAX_STREAMS open streams, headers
    within MAX_HEADER_LIST, and request bodies within the 64 KiB flow-control window, which
    is handed back only once a stream's request is complete.

    Cost: h2 is pure Python, so the per-request work around it is kept small. Headers stay
    bytes (no str round trip), h2's header checks and normalisation are off on both sides
    (``request_fields`` checks requests in one pass; our responses are fixed and well formed),
    and each answer leaves in one ``transport.write`` (one TLS record), not three.

    Not one write for all the answers of a read: dnsperf's DoH client (2.10 to 2.14 at
    least) loses an answer that shares a TLS record with the previous one (its DATA callback
    pauses nghttp2 and drops the chunk), so batching would make the benchmark client, not
    the server, the measure. One record per answer is what unbound sends too.
    """

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config)
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: BODY_WINDOW,
            },
        )
        self.conn.decoder.max_header_list_size = MAX_HEADER_LIST
        self.streams: dict[int, _Stream] = {}
        self.pending: dict[int, bytes] = {}  # response bytes waiting for the peer's window
        self.resets = 0
        self.guard = _FrameGuard(self.conn.max_inbound_frame_size)
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(BODY_WINDOW - MAX_MESSAGE)  # the connection's
        owner.write(self.conn.data_to_send())

    def receive(self, data: bytes) -> None:
        if not self.guard.ok(data):
            self._goaway(h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
            return
        owner = self.owner
        try:
            for event in self.conn.receive_data(data):
                transport = owner.transport
                if transport is None or transport.is_closing():
                    return  # a GOAWAY was sent: the rest of this client's frames do not matter
                self._event(event)
        except h2.exceptions.ProtocolError:
            # h2 has queued a GOAWAY naming the error (oversized frame, too many streams,
            # bad headers...): send it and close; only this client is affected.
            owner.write(self.conn.data_to_send())
            owner.close()
            return
        owner.write(self.conn.data_to_send())  # SETTINGS and PING acks, window updates

    def _event(self, event: h2.events.Event) -> None:
        kind = type(event)
        if kind is h2.events.RequestReceived:
            self._headers(event)  # type: ignore[arg-type]
        elif kind is h2.events.StreamEnded:
            self._request(event.stream_id)  # type: ignore[attr-defined]
        elif kind is h2.events.DataReceived:
            self._data(event)  # type: ignore[arg-type]
        elif kind is h2.events.StreamReset:
            self._forget(event.stream_id)  # type: ignore[attr-defined]
            self.resets += 1
            if self.resets > MAX_RESETS:
                self._goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        elif kind is h2.events.WindowUpdated:
            for stream_id in list(self.pending):
                self._send_body(stream_id, self.pending.pop(stream_id))
                self.owner.write(self.conn.data_to_send())
        elif kind is h2.events.ConnectionTerminated:
            self.owner.close()

    def _headers(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        fields = request_fields(event.headers)
        if fields is None:
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        if event.stream_ended is not None:  # a GET: the whole request is here, answer now
            self._serve(stream_id, fields, b"")
        else:
            self.streams[stream_id] = _Stream(fields)

    def _data(self, event: h2.events.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        size = event.flow_controlled_length or 0
        if stream is None:
            self.conn.acknowledge_received_data(size, event.stream_id)
            return
        stream.received += size
        stream.body += event.data or b""
        if len(stream.body) > MAX_MESSAGE:
            self._respond(event.stream_id, 413, [], b"")

    def _request(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return  # answered on its headers (a GET), refused, or reset
        if stream.received:
            self.conn.acknowledge_received_data(stream.received, stream_id)
        self._serve(stream_id, stream.fields, bytes(stream.body))

    def _serve(self, stream_id: int, fields: tuple[str, str, str], body: bytes) -> None:
        def respond(status: int, headers: list[tuple[bytes, bytes]], answer: bytes) -> None:
            self._respond(stream_id, status, headers, answer)

        self.owner.serve(fields[0], fields[1], fields[2], body, respond)

    def _respond(
        self, stream_id: int, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        stream = self.streams.pop(stream_id, None)
        if self.owner.transport is None:
            return  # the connection is gone
        if stream is not None and stream.received:  # an oversized body: give its window back
            self.conn.acknowledge_received_data(stream.received, stream_id)
        conn = self.conn
        fields = [(b":status", _STATUS.get(status) or b"%d" % status)]
        fields.append((b"content-length", b"%d" % len(body)))
        try:
            conn.send_headers(stream_id, fields + headers, end_stream=not body)
            if body:
                self._send_body(stream_id, body)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            return  # the stream was closed meanwhile (a reset racing a late answer)
        self.owner.write(conn.data_to_send())

    def _send_body(self, stream_id: int, body: bytes) -> None:
        # Send what the peer's windows allow now; the rest waits for its WINDOW_UPDATE.
        conn = self.conn
        try:
            while body:
                room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if room <= 0:
                    self.pending[stream_id] = body
                    return
                conn.send_data(stream_id, body[:room], end_stream=len(body) <= room)
                body = body[room:]
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            return

    def _goaway(self, code: h2.errors.ErrorCodes) -> None:
        self.conn.close_connection(error_code=code)
        self.owner.write(self.conn.data_to_send())
        self.owner.close()

    def _forget(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        self.pending.pop(stream_id, None)
        if stream is not None and stream.received:
            try:
                self.conn.acknowledge_received_data(stream.received, stream_id)
            except h2.exceptions.ProtocolError:
                pass


__all__ = ["H2Session", "reason", "request_fields"]
