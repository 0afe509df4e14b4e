"""The HTTP/1.1 side of DoH, on the ``h11`` library: one request at a time, bounded buffers."""

from __future__ import annotations

import h11

from .doh_request import MAX_MESSAGE, Owner, reason

MAX_HEADERS = 8192  # bytes of a request head (h11's incomplete-event limit)


class H1Session:
    """Requests of one HTTP/1.1 connection, in order (pipelined ones wait their turn)."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.busy = False  # an answer is owed: read no further (bounds h11's buffer)

    def receive(self, data: bytes) -> None:
        self.conn.receive_data(data)
        self._pump()

    def _pump(self) -> None:
        while not self.busy and self.owner.transport is not None:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                if not self._start(event):
                    return
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > MAX_MESSAGE:
                    self._fail(413)
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._finish()
            elif isinstance(event, h11.ConnectionClosed):
                self.owner.close()
                return

    def _start(self, request: h11.Request) -> bool:
        """False when the request was refused (and the connection is closing)."""
        self.request, self.body = request, bytearray()
        # h11 refuses a head over MAX_HEADERS only while it is incomplete: one that arrives
        # whole in a single read (a buffered TLS read often holds 20 KB) is checked here.
        size = len(request.target) + sum(len(n) + len(v) + 4 for n, v in request.headers)
        if size > MAX_HEADERS:
            self._fail(431)
            return False
        for name, value in request.headers:
            if name == b"content-length" and int(value) > MAX_MESSAGE:
                self._fail(413)  # refuse before reading a body we would not keep
                return False
        return True

    def _finish(self) -> None:
        request = self.request
        assert request is not None
        self.busy = True
        self.owner.transport.pause_reading()
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers
        }
        self.owner.serve(
            request.method.decode("ascii", "replace"),
            request.target.decode("latin-1"),
            headers.get("content-type", ""),
            bytes(self.body),
            self._respond,
        )

    def _respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if self.owner.transport is None:
            return
        fields = [(b"content-length", b"%d" % len(body))] + headers
        try:
            data = self.conn.send(
                h11.Response(status_code=status, headers=fields, reason=reason(status))
            )
            data += self.conn.send(h11.Data(data=body)) if body else b""
            data += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self.owner.close()
            return
        self.owner.write(data)
        if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is not h11.DONE:
            self.owner.close()
            return
        self.conn.start_next_cycle()
        self.busy, self.request, self.body = False, None, bytearray()
        self.owner.transport.resume_reading()
        self._pump()

    def _fail(self, status: int) -> None:
        """A bad request: answer with ``status`` if h11 still lets us, then close."""
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self.owner.write(
                    self.conn.send(
                        h11.Response(
                            status_code=status,
                            headers=[("content-length", "0"), ("connection", "close")],
                            reason=reason(status),
                        )
                    )
                    + self.conn.send(h11.EndOfMessage())
                )
            except h11.LocalProtocolError:
                pass
        self.owner.close()
