"""Refresh against a real HTTP server on 127.0.0.1: every failure keeps the last good copy."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from resolver.lists.catalogue import Catalogue, Category, Source
from resolver.lists.fetch import FetchPolicy, Status, read_meta, refresh
from resolver.lists.snapshot import downloaded_path

GOOD = "".join(f"site{i}.example\n" for i in range(100)).encode()
SMALL = b"only.example\n"
HITS: dict[str, int] = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(
        self, code: int, body: bytes, ctype: str = "text/plain", extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.strip("/")
        HITS[path] = HITS.get(path, 0) + 1
        if path == "ok":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(
                200, GOOD, extra={"ETag": '"v1"', "Last-Modified": "Sat, 01 Aug 2026 00:00:00 GMT"}
            )
        elif path in ("404", "500"):
            self._send(int(path), b"nope")
        elif path == "slow":
            time.sleep(1.0)
            self._send(200, GOOD)
        elif path == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD) * 2))
            self.end_headers()
            self.wfile.write(GOOD)
            self.wfile.flush()
            self.close_connection = True
        elif path == "huge":
            self._send(200, GOOD * 50)
        elif path == "html":
            self._send(200, b"<!DOCTYPE html><html><body>Rate limited</body></html>", "text/html")
        elif path == "html-as-text":
            self._send(200, b"  <html><body>error</body></html>")
        elif path == "binary":
            self._send(200, b"\x1f\x8b\x08\x00" + b"\x00" * 50, "application/octet-stream")
        elif path == "shrunk":
            self._send(200, SMALL)
        elif path == "empty":
            self._send(200, b"# nothing here\n")
        elif path == "badlength":
            self.send_response(200)
            self.send_header("Content-Length", "12abc")
            self.end_headers()
            self.wfile.write(GOOD[:12])
            self.close_connection = True
        elif path.startswith("n/"):  # n/<count>: a feed of that many entries
            self._send(200, "".join(f"e{i}.example\n" for i in range(int(path[2:]))).encode())


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on /slow is the point of that test


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


POLICY = FetchPolicy(
    connect_timeout=1.0,
    read_timeout=0.4,
    deadline=5.0,
    max_bytes=4096,
    retries=1,
    backoff=0.01,
)


def _catalogue(base: str, path: str, bundled: Path | None = None) -> Catalogue:
    src = Source("s", "adult", "domains", f"{base}/{path}", bundled, "MIT", 3600)
    return Catalogue(
        Path("catalogue.yaml"), (Category("adult", "vi", "en", "", True, (src,)),), "d"
    )


def _seed(state: Path) -> None:
    """A last good copy from an earlier successful refresh."""
    path = downloaded_path(state, "s")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(GOOD)
    (state / "sources" / "s.json").write_text('{"entries": 100, "etag": "\\"v0\\""}')


def test_200_then_304(server: str, tmp_path: Path) -> None:
    cat = _catalogue(server, "ok")
    first = refresh(cat, tmp_path, policy=POLICY, force=True).results[0]
    assert (first.status, first.entries, first.http_status) == (Status.UPDATED, 100, 200)
    assert downloaded_path(tmp_path, "s").read_bytes() == GOOD
    meta = read_meta(tmp_path, "s")
    assert meta["etag"] == '"v1"' and meta["last_modified"].startswith("Sat, 01 Aug")
    second = refresh(cat, tmp_path, policy=POLICY, force=True)
    assert second.results[0].status is Status.NOT_MODIFIED
    assert not second.changed and second.counts == {"not_modified": 1}


def test_not_due_is_skipped(server: str, tmp_path: Path) -> None:
    cat = _catalogue(server, "ok")
    refresh(cat, tmp_path, policy=POLICY, clock=lambda: 1000.0, force=True)
    again = refresh(cat, tmp_path, policy=POLICY, clock=lambda: 1100.0)
    assert again.results[0].status is Status.SKIPPED
    later = refresh(cat, tmp_path, policy=POLICY, clock=lambda: 1000.0 + 3600)
    assert later.results[0].status is Status.NOT_MODIFIED


@pytest.mark.parametrize(
    ("path", "status", "reason", "attempts"),
    [
        ("404", Status.FAILED, "HTTP 404", 1),
        ("500", Status.FAILED, "HTTP 500", 2),
        ("slow", Status.FAILED, "ReadTimeout", 2),
        ("truncated", Status.FAILED, "IncompleteRead", 1),  # body errors: no retry
        ("huge", Status.FAILED, "exceeds the 4096-byte cap", 1),
        ("html", Status.REJECTED, "HTML page", 1),
        ("html-as-text", Status.REJECTED, "HTML page", 1),
        ("binary", Status.REJECTED, "binary body", 1),
        ("shrunk", Status.REJECTED, "shrank from 100 to 1 entries", 1),
        ("empty", Status.REJECTED, "no usable entries", 1),
    ],
)
def test_failures_keep_last_good_copy(
    server: str, tmp_path: Path, path: str, status: Status, reason: str, attempts: int
) -> None:
    _seed(tmp_path)
    before = HITS.get(path, 0)
    result = refresh(_catalogue(server, path), tmp_path, policy=POLICY, force=True).results[0]
    assert result.status is status
    assert reason in result.reason
    assert result.attempts == attempts and HITS[path] - before == attempts
    assert downloaded_path(tmp_path, "s").read_bytes() == GOOD  # untouched
    meta = read_meta(tmp_path, "s")
    assert meta["failures"] == 1 and reason in meta["last_error"]
    assert meta["entries"] == 100


def test_first_download_compared_with_bundled_copy(server: str, tmp_path: Path) -> None:
    bundled = tmp_path / "bundled.txt"
    bundled.write_bytes(GOOD)
    state = tmp_path / "state"
    result = refresh(
        _catalogue(server, "shrunk", bundled), state, policy=POLICY, force=True
    ).results[0]
    assert result.status is Status.REJECTED and "shrank from 100" in result.reason
    assert not downloaded_path(state, "s").exists()


def test_first_download_compared_with_a_gzipped_bundled_copy(server: str, tmp_path: Path) -> None:
    bundled = tmp_path / "bundled.txt.gz"
    bundled.write_bytes(gzip.compress(GOOD))
    state = tmp_path / "state"
    result = refresh(
        _catalogue(server, "shrunk", bundled), state, policy=POLICY, force=True
    ).results[0]
    assert result.status is Status.REJECTED and "shrank from 100" in result.reason
    assert not downloaded_path(state, "s").exists()


def test_unreachable_port_fails_fast(tmp_path: Path) -> None:
    cat = _catalogue("http://127.0.0.1:9", "ok")
    t0 = time.monotonic()
    result = refresh(cat, tmp_path, policy=POLICY, force=True).results[0]
    assert result.status is Status.FAILED and "ConnectionError" in result.reason
    assert time.monotonic() - t0 < 5


def _two_sources(base: str, first: str, second: str) -> Catalogue:
    srcs = tuple(
        Source(sid, "adult", "domains", f"{base}/{path}", None, "MIT", 3600)
        for sid, path in (("a", first), ("b", second))
    )
    return Catalogue(Path("catalogue.yaml"), (Category("adult", "vi", "en", "", True, srcs),), "d")


def test_a_malformed_content_length_fails_only_that_source(server: str, tmp_path: Path) -> None:
    report = refresh(_two_sources(server, "badlength", "ok"), tmp_path, policy=POLICY, force=True)
    bad, good = report.results
    assert bad.status is Status.FAILED
    assert bad.reason == "malformed Content-Length header '12abc'"
    assert good.status is Status.UPDATED and good.copy == "downloaded"
    assert read_meta(tmp_path, "a")["failures"] == 1
    assert report.exit_status == 1


def test_eleven_halvings_never_take_a_list_below_half_its_best_copy(
    server: str, tmp_path: Path
) -> None:
    policy = FetchPolicy(retries=0, max_bytes=1 << 20)
    clock = [1_000_000.0]
    sizes = []
    for step in range(12):
        count = max(1, 1000 >> step)  # 1000, 500, 250, ... 1
        cat = _catalogue(server, f"n/{count}")
        refresh(cat, tmp_path, policy=policy, force=True, clock=lambda: clock[0])
        sizes.append(read_meta(tmp_path, "s")["entries"])
        clock[0] += 3600
    assert sizes[0] == 1000 and min(sizes) == 500
    assert len(downloaded_path(tmp_path, "s").read_bytes().splitlines()) == 500


def test_the_bundled_copy_stays_a_floor_after_downloads(server: str, tmp_path: Path) -> None:
    bundled = tmp_path / "bundled.txt"
    bundled.write_bytes(GOOD)  # 100 entries
    state = tmp_path / "state"
    policy = FetchPolicy(retries=0, max_bytes=1 << 20)
    first = refresh(_catalogue(server, "n/60", bundled), state, policy=policy, force=True)
    assert first.results[0].status is Status.UPDATED
    second = refresh(_catalogue(server, "n/40", bundled), state, policy=policy, force=True)
    result = second.results[0]
    assert result.status is Status.REJECTED and "shrank from 100 to 40" in result.reason
    assert result.copy == "last good"


def test_a_good_copy_older_than_the_window_no_longer_sets_the_baseline(
    server: str, tmp_path: Path
) -> None:
    policy = FetchPolicy(retries=0, max_bytes=1 << 20, shrink_window=86_400)
    refresh(_catalogue(server, "n/1000"), tmp_path, policy=policy, force=True, clock=lambda: 0.0)
    refresh(_catalogue(server, "n/600"), tmp_path, policy=policy, force=True, clock=lambda: 10.0)
    late = refresh(
        _catalogue(server, "n/400"), tmp_path, policy=policy, force=True, clock=lambda: 90_000.0
    )
    assert late.results[0].status is Status.UPDATED  # 400 >= half of 600, 1000 aged out
