"""A loopback HTTP list server and a small URL catalogue for the list-refresh tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GOOD = "".join(f"site{i}.example\n" for i in range(50)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/slow":
            time.sleep(2.5)  # longer than the test's whole deadline
            body, length = GOOD, str(len(GOOD))
        elif self.path == "/good":
            body, length = GOOD, str(len(GOOD))
        else:  # /badlength: the header that used to abort the whole update
            body, length = GOOD[:12], "12abc"
        self.send_response(200)
        self.send_header("Content-Length", length)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client giving up on /slow is what the deadline test wants


@contextmanager
def serving() -> Iterator[str]:
    """The list server on 127.0.0.1 (a free port), stopped when the block ends."""
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def write_catalogue(tmp_path: Path, urls: list[str], bundled: int = 0) -> list[str]:
    """A catalogue of URL sources s00, s01... (the first ``bundled`` with a bundled copy)."""
    (tmp_path / "b.txt").write_bytes(GOOD)
    rows = []
    for i, url in enumerate(urls):
        rows.append(f"      - id: s{i:02}\n        format: domains\n        url: {url}\n")
        rows.append("        licence: MIT\n")
        if i < bundled:
            rows.append("        bundled: b.txt\n")
    head = "categories:\n  - id: adult\n    name_vi: a\n    name_en: a\n    sources:\n"
    (tmp_path / "catalogue.yaml").write_text(head + "".join(rows))
    return ["--catalogue", str(tmp_path / "catalogue.yaml"), "--state-dir", str(tmp_path / "st")]
