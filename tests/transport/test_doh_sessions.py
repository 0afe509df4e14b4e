"""The HTTP/2 sessions of DoH in process (resolver/transport/doh_ng.py, libnghttp2, and its
fallback doh_h2.py, h2), fed by an h2 client: request bodies past a DNS message's size."""

from __future__ import annotations

import h2.connection
import h2.events
import pytest

from resolver.transport import doh_ng
from resolver.transport.doh_h2 import H2Session
from resolver.transport.doh_ng import NgSession
from resolver.transport.doh_request import MAX_MESSAGE

SESSIONS = [pytest.param(H2Session, id="h2")]
if doh_ng.available():  # test_doh.py fails where libnghttp2 is missing; here h2 still runs
    SESSIONS.append(pytest.param(NgSession, id="nghttp2"))


class _Transport:
    def is_closing(self) -> bool:
        return False


class _Owner:
    """What a session writes to: keeps what was sent; answers each request 200 with its size."""

    transport = _Transport()

    def __init__(self) -> None:
        self.sent = bytearray()
        self.served: list[int] = []

    def write(self, data: bytes) -> None:
        self.sent += data

    def write_records(self, records: list[bytes]) -> None:
        self.sent += b"".join(records)

    def close(self) -> None:
        pass

    def serve(self, method: str, target: str, content_type: str, body: bytes, respond) -> None:
        self.served.append(len(body))
        respond(200, [(b"content-type", b"application/dns-message")], b"ok")


def _exchange(session, owner: _Owner, client: h2.connection.H2Connection) -> list:
    """Client bytes to the session and its answer back, until neither has more to say."""
    events: list = []
    for _ in range(20):
        outgoing = client.data_to_send()
        if outgoing:
            session.receive(outgoing)
        incoming, owner.sent[:] = bytes(owner.sent), b""
        if not outgoing and not incoming:
            break
        events += client.receive_data(incoming)
    return events


def _post(client: h2.connection.H2Connection, stream_id: int) -> None:
    client.send_headers(stream_id, [
        (":method", "POST"), (":path", "/dns-query"), (":scheme", "https"),
        (":authority", "dns.example.vn"), ("content-type", "application/dns-message"),
    ])  # fmt: skip


@pytest.mark.parametrize("session_class", SESSIONS)
def test_a_body_past_a_dns_messages_size_gets_413_not_a_stalled_stream(session_class) -> None:
    # The flow-control window a client starts with was exactly MAX_MESSAGE: a larger body
    # could never arrive whole, so the 413 never came and the stream (and every POST sharing
    # the connection's window) stalled until the idle timeout closed the connection.
    owner = _Owner()
    session = session_class(owner)
    client = h2.connection.H2Connection()
    client.initiate_connection()
    _exchange(session, owner, client)  # settings both ways
    _post(client, 1)
    sent = 0
    statuses: dict[int, bytes] = {}
    while sent <= MAX_MESSAGE and 1 not in statuses:
        room = min(client.local_flow_control_window(1), client.max_outbound_frame_size)
        assert room > 0, f"no window left after {sent} bytes, and no answer"
        client.send_data(1, b"\0" * room)
        sent += room
        for event in _exchange(session, owner, client):
            if isinstance(event, h2.events.ResponseReceived):
                statuses[event.stream_id] = dict(event.headers)[b":status"]
    assert statuses == {1: b"413"} and owner.served == []
    # The connection's window was handed back: the next POST arrives whole and is served.
    _post(client, 3)
    client.send_data(3, b"\0" * 100, end_stream=True)
    events = _exchange(session, owner, client)
    assert any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == 3 for e in events)
    assert owner.served == [100]
