"""The /metrics HTTP endpoint, served from threads so a scrape never blocks the DNS loop.

A scrape is rare and cheap, but one thread serving clients one after another let three idle
connections delay a scrape by 3 x the request timeout, past Prometheus's 10 s scrape timeout
(a false "instance down"). Each connection gets its own thread, and at most ``MAX_CLIENTS``
are served at once: a connection past the cap is closed at once, so a flood cannot grow
threads without bound.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from resolver.errors import ConfigError
from resolver.settings import MetricsAddress, parse_address  # noqa: F401 - importers read them here

REQUEST_TIMEOUT = 5.0  # seconds a client may take to send its request
MAX_CLIENTS = 16  # connections served at once; Prometheus needs one per scraper


class _Server(ThreadingMixIn, HTTPServer):
    registry: CollectorRegistry
    daemon_threads = True  # a stuck client never holds up shutdown
    block_on_close = False

    def __init__(self, address: MetricsAddress, registry: CollectorRegistry) -> None:
        # HTTPServer binds AF_INET by default; an IPv6 literal needs the family set first.
        self.address_family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        self.registry = registry
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__((address.host, address.port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the cap: closed at once, nothing queued
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, content_type, encoder(self.server.registry))
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found\n")

    def _reply(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        # Scrapes every few seconds would flood the journal; errors surface in Prometheus.
        pass


class MetricsServer:
    """Serves ``registry`` at /metrics from a daemon thread; ``start()`` then ``stop()``."""

    def __init__(self, registry: CollectorRegistry, address: MetricsAddress) -> None:
        self._registry = registry
        self._address = address
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsAddress:
        """Bind and serve; returns the bound address (the real port when asked for 0)."""
        if self._server is not None:
            raise RuntimeError("metrics server already started")
        try:
            self._server = _Server(self._address, self._registry)
        except OSError as e:
            where = f"{self._address.host}:{self._address.port}"
            raise ConfigError(f"metrics.listen: cannot listen on {where}: {e.strerror}") from e
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="lachan-metrics", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self.address

    @property
    def registry(self) -> CollectorRegistry:
        """Where other parts (the subscriber metrics) register their collectors."""
        return self._registry

    @property
    def address(self) -> MetricsAddress:
        """The bound address once started, else the configured one."""
        if self._server is None:
            return self._address
        return MetricsAddress(self._address.host, self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
