"""The HTTP/2 side of DoH, on the ``h2`` library: bounded streams, headers, bodies and resets."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .doh_request import MAX_MESSAGE, Owner, reason

MAX_STREAMS = 100  # concurrent requests per connection (SETTINGS_MAX_CONCURRENT_STREAMS)
MAX_HEADER_LIST = 8192  # bytes of decoded headers per request
MAX_RESETS = 200  # streams a client may reset per connection (HTTP/2 "rapid reset")


class _Stream:
    __slots__ = ("headers", "body", "received")

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.body = bytearray()
        self.received = 0  # DATA bytes not yet handed back to the flow-control windows


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
    """

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        # Our own response headers are fixed and well-formed: checking them again on every
        # answer was a third of h2's cost per request (189 -> 120 us measured). Inbound
        # headers, which hostile clients write, are still validated.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding="utf-8",
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config)
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            },
        )
        self.conn.decoder.max_header_list_size = MAX_HEADER_LIST
        self.streams: dict[int, _Stream] = {}
        self.pending: dict[int, bytes] = {}  # response bytes waiting for the peer's window
        self.resets = 0
        self.guard = _FrameGuard(self.conn.max_inbound_frame_size)
        self.conn.initiate_connection()
        owner.write(self.conn.data_to_send())

    def receive(self, data: bytes) -> None:
        if not self.guard.ok(data):
            self._goaway(h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
            return
        try:
            events = self.conn.receive_data(data)
            for event in events:
                if self.owner.transport is None or self.owner.transport.is_closing():
                    return  # a GOAWAY was sent: the rest of this client's frames do not matter
                self._event(event)
        except h2.exceptions.ProtocolError:
            # h2 has queued a GOAWAY naming the error (oversized frame, too many streams,
            # bad headers...): send it and close; only this client is affected.
            self.owner.write(self.conn.data_to_send())
            self.owner.close()
            return
        self.owner.write(self.conn.data_to_send())

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            # header_encoding="utf-8": h2 hands over str names and values
            headers = {str(k): str(v) for k, v in event.headers or ()}
            self.streams[event.stream_id] = _Stream(headers)
        elif isinstance(event, h2.events.DataReceived):
            self._data(event)
        elif isinstance(event, h2.events.StreamEnded):
            self._request(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._forget(event.stream_id)
            self.resets += 1
            if self.resets > MAX_RESETS:
                self._goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        elif isinstance(event, h2.events.WindowUpdated):
            for stream_id in list(self.pending):
                self._send_body(stream_id, self.pending.pop(stream_id))
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.owner.close()

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
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if stream.received:
            self.conn.acknowledge_received_data(stream.received, stream_id)
            stream.received = 0
        h = stream.headers
        body = bytes(stream.body)
        stream.body = bytearray()

        def respond(status: int, headers: list[tuple[str, str]], answer: bytes) -> None:
            self._respond(stream_id, status, headers, answer)

        self.owner.serve(
            h.get(":method", ""), h.get(":path", ""), h.get("content-type", ""), body, respond
        )

    def _respond(
        self, stream_id: int, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None or self.owner.transport is None:
            return  # reset by the client, or the connection is gone
        if stream.received:  # an oversized body: give its window back before resetting
            self.conn.acknowledge_received_data(stream.received, stream_id)
        try:
            fields = [(":status", str(status)), ("content-length", str(len(body)))] + headers
            self.conn.send_headers(stream_id, fields, end_stream=not body)
            if body:
                self._send_body(stream_id, body)
        except h2.exceptions.ProtocolError:
            return  # the stream was closed meanwhile (a reset racing a late answer)
        self.owner.write(self.conn.data_to_send())

    def _send_body(self, stream_id: int, body: bytes) -> None:
        # Send what the peer's windows allow now; the rest waits for its WINDOW_UPDATE.
        try:
            while body:
                room = min(
                    self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size,
                )
                if room <= 0:
                    self.pending[stream_id] = body
                    return
                self.conn.send_data(stream_id, body[:room], end_stream=len(body) <= room)
                body = body[room:]
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            return
        self.owner.write(self.conn.data_to_send())

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


__all__ = ["H2Session", "reason"]
