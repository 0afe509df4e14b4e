"""The HTTP/2 side of DoH on libnghttp2, the C library curl, unbound and dnsperf use (ctypes).

h2 (doh_h2.py) is pure Python and cost ~70 us per request, more than the whole rest of a DoH
cache hit; nghttp2 does the same work in ~12 us. It is used when the shared library loads
(Debian: libnghttp2-14, which curl already pulls in); else DoH keeps h2.

Callbacks are created once for the module and find their session by the ``user_data`` key, so
an idle connection costs one nghttp2 session and no ctypes thunks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import logging
from typing import Any

from .doh_request import BODY_WINDOW, MAX_MESSAGE, Owner

log = logging.getLogger(__name__)

MAX_STREAMS = 100  # concurrent requests per connection (SETTINGS_MAX_CONCURRENT_STREAMS)
MAX_HEADER_LIST = 8192  # bytes of decoded headers per request
MAX_RESETS = 200  # streams a client may reset per connection (HTTP/2 "rapid reset")
MAX_DEFLATE_TABLE = 256  # bytes of HPACK dynamic table for our answer headers (see _options)
# ... and for a client's request headers (SETTINGS_HEADER_TABLE_SIZE, 4,096 by default): a
# client that indexes each new :path (GET, the query in it) filled it, 9.9 KiB more heap per
# idle connection after 100 requests; 1,024 bytes still hold a browser's repeated headers.
HEADER_TABLE = 1024

_HEADERS, _DATA, _RST_STREAM, _GOAWAY = 1, 0, 3, 7  # frame types (RFC 9113 6)
_END_STREAM = 0x1
_ENHANCE_YOUR_CALM, _PROTOCOL_ERROR = 0xB, 0x1
_EOF = 0x1  # NGHTTP2_DATA_FLAG_EOF
_CALLBACK_FAILURE = -902  # NGHTTP2_ERR_CALLBACK_FAILURE
_SETTINGS_HEADER_TABLE_SIZE, _SETTINGS_MAX_CONCURRENT_STREAMS = 1, 3
_SETTINGS_MAX_HEADER_LIST_SIZE, _SETTINGS_INITIAL_WINDOW_SIZE = 6, 4


class _FrameHd(ctypes.Structure):
    _fields_ = [
        ("length", ctypes.c_size_t),
        ("stream_id", ctypes.c_int32),
        ("type", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8),
    ]


class _Nv(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("value", ctypes.c_char_p),
        ("namelen", ctypes.c_size_t),
        ("valuelen", ctypes.c_size_t),
        ("flags", ctypes.c_uint8),
    ]


class _SettingsEntry(ctypes.Structure):
    _fields_ = [("settings_id", ctypes.c_int32), ("value", ctypes.c_uint32)]


_P = ctypes.c_void_p
_Bytes = ctypes.POINTER(ctypes.c_char)
_READ = ctypes.CFUNCTYPE(
    ctypes.c_ssize_t, _P, ctypes.c_int32, _Bytes, ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_uint32), _P, _P,
)  # fmt: skip
_ON_HEADER = ctypes.CFUNCTYPE(
    ctypes.c_int, _P, ctypes.POINTER(_FrameHd), _Bytes, ctypes.c_size_t, _Bytes,
    ctypes.c_size_t, ctypes.c_uint8, _P,
)  # fmt: skip
_ON_FRAME = ctypes.CFUNCTYPE(ctypes.c_int, _P, ctypes.POINTER(_FrameHd), _P)
_ON_CHUNK = ctypes.CFUNCTYPE(
    ctypes.c_int, _P, ctypes.c_uint8, ctypes.c_int32, _Bytes, ctypes.c_size_t, _P
)
_ON_CLOSE = ctypes.CFUNCTYPE(ctypes.c_int, _P, ctypes.c_int32, ctypes.c_uint32, _P)


class _DataSource(ctypes.Union):
    _fields_ = [("fd", ctypes.c_int), ("ptr", _P)]


class _DataProvider(ctypes.Structure):
    _fields_ = [("source", _DataSource), ("read_callback", _READ)]


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nghttp2") or "libnghttp2.so.14"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nghttp2_session_mem_recv.restype = ctypes.c_ssize_t
    lib.nghttp2_session_mem_recv.argtypes = [_P, ctypes.c_char_p, ctypes.c_size_t]
    lib.nghttp2_session_mem_send.restype = ctypes.c_ssize_t
    lib.nghttp2_session_mem_send.argtypes = [_P, ctypes.POINTER(_P)]
    lib.nghttp2_submit_response.argtypes = [
        _P, ctypes.c_int32, ctypes.POINTER(_Nv), ctypes.c_size_t, ctypes.c_void_p
    ]  # fmt: skip
    lib.nghttp2_submit_settings.argtypes = [_P, ctypes.c_uint8, _P, ctypes.c_size_t]
    lib.nghttp2_session_server_new3.argtypes = [ctypes.POINTER(_P), _P, _P, _P, _P]
    lib.nghttp2_session_consume.argtypes = [_P, ctypes.c_int32, ctypes.c_size_t]
    lib.nghttp2_session_consume_connection.argtypes = [_P, ctypes.c_size_t]
    lib.nghttp2_session_set_local_window_size.argtypes = [
        _P, ctypes.c_uint8, ctypes.c_int32, ctypes.c_int32
    ]  # fmt: skip
    lib.nghttp2_option_set_no_auto_window_update.argtypes = [_P, ctypes.c_int]
    lib.nghttp2_option_set_max_deflate_dynamic_table_size.argtypes = [_P, ctypes.c_size_t]
    lib.nghttp2_option_set_no_closed_streams.argtypes = [_P, ctypes.c_int]
    lib.nghttp2_session_del.argtypes = [_P]
    lib.nghttp2_session_terminate_session.argtypes = [_P, ctypes.c_uint32]
    lib.nghttp2_session_want_read.argtypes = [_P]
    lib.nghttp2_session_want_write.argtypes = [_P]
    return lib


_LIB: Any = _load()  # the CDLL, or None
_SESSIONS: dict[int, NgSession] = {}
_KEYS = itertools.count(1)


def available() -> bool:
    return _LIB is not None


def _session(user_data: int | None) -> NgSession | None:
    return _SESSIONS.get(user_data or 0)


def _on_header(_s, frame, name, namelen, value, valuelen, _flags, user_data):
    session = _session(user_data)
    if session is None:
        return _CALLBACK_FAILURE
    if frame[0].type == _HEADERS:
        stream = session.streams.get(frame[0].stream_id)
        if stream is None:
            stream = session.streams[frame[0].stream_id] = ["", "", "", bytearray(), False, 0]
        key = name[:namelen]
        if key == b":path":
            stream[1] = value[:valuelen].decode("latin-1")
        elif key == b":method":
            stream[0] = value[:valuelen].decode("latin-1")
        elif key == b"content-type":
            stream[2] = value[:valuelen].decode("latin-1")
    return 0


def _on_chunk(_s, _flags, stream_id, data, length, user_data):
    session = _session(user_data)
    if session is None:
        return _CALLBACK_FAILURE
    stream = session.streams.get(stream_id)
    if stream is None or stream[4]:  # answered (413): what else arrives is dropped
        _LIB.nghttp2_session_consume(session.handle, stream_id, length)
        return 0
    stream[5] += length  # the window is handed back once the request is complete
    body = stream[3]
    body += data[:length]
    if len(body) > MAX_MESSAGE:
        stream[4] = True
        _consume(session, stream_id, stream)
        session.respond(stream_id, 413, [], b"")
    return 0


def _consume(session: NgSession, stream_id: int, stream: list) -> None:
    if stream[5]:
        _LIB.nghttp2_session_consume(session.handle, stream_id, stream[5])
        stream[5] = 0


def _on_frame(_s, frame, user_data):
    session = _session(user_data)
    if session is None:
        return _CALLBACK_FAILURE
    hd = frame[0]
    kind = hd.type
    if (kind == _HEADERS or kind == _DATA) and hd.flags & _END_STREAM:
        stream = session.streams.get(hd.stream_id)
        if stream is not None and not stream[4]:
            stream[4] = True
            _consume(session, hd.stream_id, stream)
            try:
                session.request(hd.stream_id, stream)
            except Exception:  # a bug must cost this request, never the process
                log.exception("error answering a DoH request")
                return _CALLBACK_FAILURE
    elif kind == _RST_STREAM:
        session.resets += 1
        if session.resets > MAX_RESETS:
            _LIB.nghttp2_session_terminate_session(session.handle, _ENHANCE_YOUR_CALM)
    elif kind == _GOAWAY:
        session.peer_gone = True
    return 0


def _on_close(_s, stream_id, _error, user_data):
    session = _session(user_data)
    if session is not None:
        stream = session.streams.pop(stream_id, None)
        session.bodies.pop(stream_id, None)
        if stream is not None and stream[5]:  # reset before its end: free the connection's
            _LIB.nghttp2_session_consume_connection(session.handle, stream[5])
    return 0


def _read(_s, stream_id, buf, length, flags, _source, user_data):
    session = _session(user_data)
    body = None if session is None else session.bodies.get(stream_id)
    if body is None:
        return _CALLBACK_FAILURE
    piece = body[:length]
    ctypes.memmove(buf, piece, len(piece))
    if len(piece) == len(body):
        del session.bodies[stream_id]
        flags[0] |= _EOF
    else:
        session.bodies[stream_id] = body[length:]
    return len(piece)


_CALLBACKS = (
    _ON_HEADER(_on_header), _ON_CHUNK(_on_chunk), _ON_FRAME(_on_frame), _ON_CLOSE(_on_close)
)  # fmt: skip
_PROVIDER = _DataProvider()
_PROVIDER.read_callback = _READ(_read)
_CONTENT_LENGTH = b"content-length"


def _callbacks() -> ctypes.c_void_p:
    assert _LIB is not None
    handle = ctypes.c_void_p()
    _LIB.nghttp2_session_callbacks_new(ctypes.byref(handle))
    on_header, on_chunk, on_frame, on_close = _CALLBACKS
    _LIB.nghttp2_session_callbacks_set_on_header_callback(handle, on_header)
    _LIB.nghttp2_session_callbacks_set_on_data_chunk_recv_callback(handle, on_chunk)
    _LIB.nghttp2_session_callbacks_set_on_frame_recv_callback(handle, on_frame)
    _LIB.nghttp2_session_callbacks_set_on_stream_close_callback(handle, on_close)
    return handle


def _options() -> ctypes.c_void_p:
    """Windows handed back by us (``_consume``), only once a request is complete: a client's
    unfinished bodies then hold at most one connection window (64 KiB), not one per stream.
    Closed streams are freed at once (DoH has no use for RFC 7540 priorities, which kept them:
    4 KiB more per idle connection that had answered one query). Our HPACK table for answer
    headers is kept small: each new ``max-age`` went into it, and after answers of many TTLs a
    connection held some 10 KiB more of them (4,096 bytes of HPACK accounting)."""
    handle = ctypes.c_void_p()
    _LIB.nghttp2_option_new(ctypes.byref(handle))
    _LIB.nghttp2_option_set_no_auto_window_update(handle, 1)
    _LIB.nghttp2_option_set_no_closed_streams(handle, 1)
    _LIB.nghttp2_option_set_max_deflate_dynamic_table_size(handle, MAX_DEFLATE_TABLE)
    return handle


_CALLBACK_SET = _callbacks() if _LIB is not None else None
try:  # lachan's allocator (resolver/_ngmem.c, built into resolver._nametable); else malloc
    from resolver import _nametable

    _NGMEM: Any = _nametable
except ImportError:  # pragma: no cover - the extension is built with the package
    _NGMEM = None
_OPTIONS = _options() if _LIB is not None else None
_SETTINGS = (_SettingsEntry * 4)(
    _SettingsEntry(_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS),
    _SettingsEntry(_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST),
    _SettingsEntry(_SETTINGS_HEADER_TABLE_SIZE, HEADER_TABLE),
    _SettingsEntry(_SETTINGS_INITIAL_WINDOW_SIZE, BODY_WINDOW),
)


class NgSession:
    """Streams of one HTTP/2 connection; each complete request goes to ``DohConnection.serve``.

    nghttp2 checks frames, headers (RFC 9113 8), flow control and stream limits itself;
    request bodies are bounded here (413 past a DNS message's size), resets per connection
    too. Each answer leaves in its own write (see doh_h2.py on dnsperf).
    """

    def __init__(self, owner: Owner) -> None:
        assert _LIB is not None
        self.owner = owner
        self.key = next(_KEYS)
        # stream id -> [method, path, content type, body, answered, bytes not yet consumed]
        self.streams: dict[int, list] = {}
        self.bodies: dict[int, bytes] = {}  # answers nghttp2 has yet to read
        self.resets = 0
        self.peer_gone = False
        self.receiving = False
        # Its own allocator: the larger blocks mapped apart, trimmed when idle (``trim``).
        self.arena = _NGMEM.ngmem_new() if _NGMEM is not None else 0
        handle = ctypes.c_void_p()
        _LIB.nghttp2_session_server_new3(
            ctypes.byref(handle), _CALLBACK_SET, self.key, _OPTIONS, self.arena or None
        )
        self.handle = handle
        _SESSIONS[self.key] = self
        _LIB.nghttp2_submit_settings(self.handle, 0, ctypes.byref(_SETTINGS), len(_SETTINGS))
        _LIB.nghttp2_session_set_local_window_size(self.handle, 0, 0, BODY_WINDOW)
        self._flush()

    def receive(self, data: bytes) -> None:
        if self.handle is None:
            return
        self.receiving = True
        try:
            used = _LIB.nghttp2_session_mem_recv(self.handle, data, len(data))
        finally:
            self.receiving = False
        self._flush()
        if used < 0 or self.peer_gone or not self._wanted():
            self.owner.close()  # a protocol error (nghttp2 sent GOAWAY) or the peer left

    def request(self, stream_id: int, stream: list) -> None:
        def respond(status: int, headers: list[tuple[bytes, bytes]], answer: bytes) -> None:
            self.respond(stream_id, status, headers, answer)

        self.owner.serve(stream[0], stream[1], stream[2], bytes(stream[3]), respond)

    def respond(
        self, stream_id: int, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        if self.handle is None:
            return  # the connection is gone
        fields = [(b":status", b"%d" % status), (_CONTENT_LENGTH, b"%d" % len(body)), *headers]
        nva = (_Nv * len(fields))()
        for at, (name, value) in enumerate(fields):
            nva[at] = _Nv(name, value, len(name), len(value), 0)
        provider = None
        if body:
            self.bodies[stream_id] = body
            provider = ctypes.byref(_PROVIDER)
        if _LIB.nghttp2_submit_response(self.handle, stream_id, nva, len(fields), provider):
            self.bodies.pop(stream_id, None)  # the stream was closed meanwhile
            return
        if not self.receiving:
            self._flush()

    def _flush(self) -> None:
        """Send what nghttp2 has queued, one TLS record per answer (each ends with its DATA
        frame: see doh_h2.py on dnsperf), all records of this turn in one socket write."""
        records: list[bytes] = []
        out = b""
        pointer = ctypes.c_void_p()
        while True:
            size = _LIB.nghttp2_session_mem_send(self.handle, ctypes.byref(pointer))
            if size <= 0:
                break
            chunk = ctypes.string_at(pointer, size)
            out += chunk
            if _ends_with_data(chunk):
                records.append(out)
                out = b""
        if out:
            records.append(out)
        if records:
            self.owner.write_records(records)

    def _wanted(self) -> bool:
        handle = self.handle
        return bool(
            _LIB.nghttp2_session_want_read(handle) or _LIB.nghttp2_session_want_write(handle)
        )

    def trim(self) -> None:
        """Give the pages of the session's output buffer and empty stream table back to the
        system: called once the connection has gone quiet (an idle connection then holds
        about 30 KiB instead of 38; resolver/_ngmem.c)."""
        if self.arena and self.handle is not None and not self.streams and not self.bodies:
            if not _LIB.nghttp2_session_want_write(self.handle):  # nothing packed, unsent
                _NGMEM.ngmem_trim(self.arena)

    def close(self) -> None:
        """Free the nghttp2 session (the connection is gone)."""
        if self.handle is not None:
            _SESSIONS.pop(self.key, None)
            _LIB.nghttp2_session_del(self.handle)
            self.handle = None  # type: ignore[assignment]
            if self.arena:
                _NGMEM.ngmem_free(self.arena)
                self.arena = 0


def _ends_with_data(buffer: bytes) -> bool:
    """Whether the last whole frame in ``buffer`` is a DATA frame (RFC 9113 4.1 layout)."""
    at, last = 0, -1
    while at + 9 <= len(buffer):
        last = buffer[at + 3]
        at += 9 + int.from_bytes(buffer[at : at + 3], "big")
    return last == _DATA
