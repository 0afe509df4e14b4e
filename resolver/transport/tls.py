"""TLS contexts for DoT and DoH: certificate files, ALPN, SNI capture and reload on SIGHUP."""

from __future__ import annotations

import ctypes
import logging
import ssl
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

ALPN_DOT = ("dot",)  # RFC 7858 / the IANA ALPN registry
ALPN_DOH = ("h2", "http/1.1")  # RFC 8484: HTTP/2 preferred, HTTP/1.1 for simple clients
SNI_ATTRIBUTE = "lachan_sni"  # where the SNI callback leaves the server name on the SSLObject
_M_MMAP_THRESHOLD = -3  # glibc mallopt() parameter
# What DoT and DoH connections decrypt into (asyncio.BufferedProtocol.get_buffer): one for the
# loop, since each read is consumed before the next. As plain Protocols, uvloop allocated a
# 256 KiB bytes object per TLS read, which glibc maps and unmaps every time under the fixed
# threshold below (mmap, mremap and munmap were a fifth of a DoH request's CPU).
READ_BUFFER = memoryview(bytearray(256 * 1024))


def keep_tls_buffers_mapped() -> bool:
    """Fix glibc's mmap threshold at its default 128 KiB (False where that is not glibc).

    uvloop gives every TLS connection a 256 KiB read buffer from malloc. glibc maps such a
    block on its own, so the untouched pages of an idle connection cost nothing, until the
    first one is freed (any closed connection): glibc then raises its threshold above 256 KiB
    and later buffers come from the heap, where an idle DoT connection was measured at 47 KiB
    instead of 25. A fixed threshold also turns that adjustment off.
    """
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 128 * 1024))
    except (OSError, AttributeError):
        return False


def load_context(cert: Path, key: Path, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """A server context for one certificate chain and key (TLS 1.2 and 1.3 only)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(alpn))
    context.num_tickets = 2  # TLS 1.3 session tickets: a returning phone skips a full handshake
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: cannot load certificate {cert} with key {key}: {exc}") from None
    return context


class TlsContexts:
    """The listening contexts of one ALPN set, and the certificate they currently serve.

    Listeners keep the context they were opened with; its SNI callback moves each new
    connection onto the most recently loaded one. So a SIGHUP after certbot renews loads the
    new chain for new connections while open ones keep theirs (nothing is dropped).
    """

    def __init__(self, cert: Path, key: Path, alpn: tuple[str, ...]) -> None:
        self.cert, self.key, self.alpn = cert, key, alpn
        self.listening = load_context(cert, key, alpn)
        self.listening.sni_callback = self._on_client_hello
        self.current = self.listening  # until a reload: no context switch per handshake

    def reload(self, cert: Path | None = None, key: Path | None = None) -> None:
        """Load the files again (or new ones); raises ConfigError and keeps the old on failure."""
        cert, key = cert or self.cert, key or self.key
        self.current = load_context(cert, key, self.alpn)
        self.cert, self.key = cert, key

    def _on_client_hello(
        self, connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        setattr(connection, SNI_ATTRIBUTE, (server_name or "").lower())
        if self.current is not self.listening:
            connection.context = self.current


def server_name_of(ssl_object: object) -> str:
    """The SNI a client sent ('' when none), as the SNI callback recorded it."""
    return getattr(ssl_object, SNI_ATTRIBUTE, "") if ssl_object is not None else ""


def device_from_sni(sni: str, server_name: str) -> str | None:
    """The device ID in ``ID.<server_name>``; None for the bare name or any other name."""
    if not server_name or not sni.endswith("." + server_name):
        return None
    label = sni[: -len(server_name) - 1]
    return None if not label or "." in label else label
