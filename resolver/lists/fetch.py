"""Refresh URL sources without ever weakening protection: keep the last good copy on doubt.

A download replaces a source's copy only when it is a complete 200 response, under the size
cap, text rather than an HTML error page, parses to entries, and did not shrink by more than
``max_shrink`` against the copy it replaces (a truncated feed silently dropping most of a
category is the failure this guards against). Everything else keeps the old copy, logs one
line and is counted in the SourceResult the caller turns into metrics.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from resolver.lists.build import atomic_write
from resolver.lists.catalogue import Catalogue, Source
from resolver.lists.parsers import parse
from resolver.lists.snapshot import downloaded_path, read_text

log = logging.getLogger(__name__)


class Status(enum.Enum):
    """Outcome of one source's refresh (a bounded metrics label)."""

    UPDATED = "updated"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"  # network or HTTP failure: last good copy kept
    REJECTED = "rejected"  # downloaded but implausible: last good copy kept
    SKIPPED = "skipped"  # no URL, or not due yet


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits for one refresh run."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0  # a server dripping bytes cannot hold a refresh forever
    max_bytes: int = 64 * 1024 * 1024
    retries: int = 3
    backoff: float = 2.0  # seconds before the 2nd attempt, doubled after each failure
    max_shrink: float = 0.5
    user_agent: str = "lachan-lists/1 (+https://github.com/lachan)"


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What happened to one source in a refresh."""

    source: str
    status: Status
    reason: str = ""
    entries: int = 0
    bytes: int = 0
    attempts: int = 0
    http_status: int | None = None
    duration: float = 0.0


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """Every source's result; ``changed`` says whether a recompile is needed."""

    results: tuple[SourceResult, ...]
    started: float
    finished: float
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True when at least one source got a new copy."""
        return any(r.status is Status.UPDATED for r in self.results)


class _Failure(Exception):
    """A download failed; ``retry`` says whether another attempt may help."""

    def __init__(self, reason: str, retry: bool, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.retry = retry
        self.http_status = http_status


def meta_path(state_dir: Path, source_id: str) -> Path:
    """Where a source's download metadata lives."""
    return Path(state_dir) / "sources" / f"{source_id}.json"


def read_meta(state_dir: Path, source_id: str) -> dict[str, Any]:
    """A source's metadata (empty when it was never fetched or the file is unreadable)."""
    try:
        data = json.loads(meta_path(state_dir, source_id).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_meta(state_dir: Path, source_id: str, meta: dict[str, Any]) -> None:
    atomic_write(meta_path(state_dir, source_id), json.dumps(meta, indent=1).encode())


def refresh(
    catalogue: Catalogue,
    state_dir: Path,
    *,
    policy: FetchPolicy = FetchPolicy(),
    session: requests.Session | None = None,
    only: Iterable[str] | None = None,
    force: bool = False,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RefreshReport:
    """Fetch every due URL source (all of them with ``force``); never raises for one source."""
    started = clock()
    wanted = set(only) if only is not None else None
    http = session or requests.Session()
    results = []
    for src in catalogue.sources:
        if wanted is not None and src.id not in wanted:
            continue
        results.append(_refresh_one(src, Path(state_dir), policy, http, force, clock, sleep))
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    return RefreshReport(tuple(results), started, clock(), counts)


def _refresh_one(
    src: Source,
    state_dir: Path,
    policy: FetchPolicy,
    http: requests.Session,
    force: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> SourceResult:
    if not src.url:
        return SourceResult(src.id, Status.SKIPPED, "no url")
    meta = read_meta(state_dir, src.id)
    now = clock()
    if not force and now - float(meta.get("last_attempt", 0)) < src.refresh:
        return SourceResult(src.id, Status.SKIPPED, "not due")
    meta["last_attempt"] = now
    result = _download_and_store(src, state_dir, policy, http, meta, clock, sleep)
    if result.status in (Status.UPDATED, Status.NOT_MODIFIED):
        meta.update(last_success=clock(), last_error="", failures=0)
    else:
        meta.update(last_error=result.reason, failures=int(meta.get("failures", 0)) + 1)
        log.warning("list %s: kept last good copy: %s", src.id, result.reason)
    meta["last_status"] = result.status.value
    _write_meta(state_dir, src.id, meta)
    return result


def _download_and_store(
    src: Source,
    state_dir: Path,
    policy: FetchPolicy,
    http: requests.Session,
    meta: dict[str, Any],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> SourceResult:
    t0 = clock()
    have_copy = downloaded_path(state_dir, src.id).exists()
    headers = _conditional_headers(meta) if have_copy else {}
    attempts = 0
    while True:
        attempts += 1
        try:
            code, body, resp_headers = _get(http, str(src.url), headers, policy, clock)
            break
        except _Failure as exc:
            if not exc.retry or attempts >= policy.retries:
                return SourceResult(
                    src.id,
                    Status.FAILED,
                    str(exc),
                    attempts=attempts,
                    http_status=exc.http_status,
                    duration=clock() - t0,
                )
            sleep(policy.backoff * 2 ** (attempts - 1))
    if code == 304:
        return SourceResult(
            src.id,
            Status.NOT_MODIFIED,
            "",
            int(meta.get("entries", 0)),
            0,
            attempts,
            304,
            clock() - t0,
        )
    return _store(src, state_dir, policy, meta, body, resp_headers, attempts, clock() - t0)


def _conditional_headers(meta: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if meta.get("etag"):
        headers["If-None-Match"] = str(meta["etag"])
    if meta.get("last_modified"):
        headers["If-Modified-Since"] = str(meta["last_modified"])
    return headers


def _get(
    http: requests.Session,
    url: str,
    headers: dict[str, str],
    policy: FetchPolicy,
    clock: Callable[[], float],
) -> tuple[int, bytes, dict[str, str]]:
    """One GET with a size cap and a total deadline; raise _Failure on any problem."""
    headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "gzip", **headers}
    deadline = clock() + policy.total_timeout
    try:
        with http.get(
            url, headers=headers, stream=True, timeout=(policy.connect_timeout, policy.read_timeout)
        ) as resp:
            if resp.status_code == 304:
                return 304, b"", dict(resp.headers)
            if resp.status_code != 200:
                retry = resp.status_code >= 500 or resp.status_code == 429
                raise _Failure(f"HTTP {resp.status_code}", retry, resp.status_code)
            declared = int(resp.headers.get("Content-Length") or 0)
            if declared > policy.max_bytes:
                raise _Failure(
                    f"body of {declared} bytes exceeds the {policy.max_bytes}-byte cap", False, 200
                )
            body = _read_capped(resp, policy, deadline, clock)
            return 200, body, dict(resp.headers)
    except requests.RequestException as exc:
        raise _Failure(f"{type(exc).__name__}: {_short(exc)}", True) from None


def _read_capped(
    resp: requests.Response, policy: FetchPolicy, deadline: float, clock: Callable[[], float]
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > policy.max_bytes:
            raise _Failure(f"body exceeds the {policy.max_bytes}-byte cap", False, 200)
        if clock() > deadline:
            raise _Failure(f"download slower than the {policy.total_timeout:.0f}s limit", True, 200)
        chunks.append(chunk)
    return b"".join(chunks)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."


def _store(
    src: Source,
    state_dir: Path,
    policy: FetchPolicy,
    meta: dict[str, Any],
    body: bytes,
    headers: dict[str, str],
    attempts: int,
    duration: float,
) -> SourceResult:
    def rejected(reason: str) -> SourceResult:
        return SourceResult(src.id, Status.REJECTED, reason, 0, len(body), attempts, 200, duration)

    problem, entries = _validate(src, body, headers)
    if problem:
        return rejected(problem)
    before = _previous_entries(src, state_dir, meta)
    if before and entries < before * (1 - policy.max_shrink):
        return rejected(
            f"shrank from {before} to {entries} entries (limit {policy.max_shrink:.0%})"
        )
    atomic_write(downloaded_path(state_dir, src.id), body)
    meta.update(
        etag=headers.get("ETag", ""),
        last_modified=headers.get("Last-Modified", ""),
        entries=entries,
        bytes=len(body),
    )
    return SourceResult(src.id, Status.UPDATED, "", entries, len(body), attempts, 200, duration)


def _validate(src: Source, body: bytes, headers: dict[str, str]) -> tuple[str, int]:
    """('', entries) for a plausible list, else (reason, 0)."""
    if "html" in headers.get("Content-Type", "").lower() or _looks_html(body):
        return "HTML page instead of a list", 0
    if b"\x00" in body:
        return "binary body (NUL bytes) instead of a text list", 0
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"body is not UTF-8 text ({exc.reason} at byte {exc.start})", 0
    entries = parse(text, src.format).entries
    if entries == 0:
        return "no usable entries", 0
    return "", entries


def _looks_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _previous_entries(src: Source, state_dir: Path, meta: dict[str, Any]) -> int:
    """Entries of the copy a download would replace: last download, else the bundled file."""
    if meta.get("entries") and downloaded_path(state_dir, src.id).exists():
        return int(meta["entries"])
    if src.bundled is not None and src.bundled.exists():
        return parse(read_text(src.bundled), src.format).entries  # .gz bundled files too
    return 0
