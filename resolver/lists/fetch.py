"""Refresh URL sources without ever weakening protection: keep the last good copy on doubt.

A download replaces a source's copy only when it is a complete 200 response, under the size
cap, text rather than an HTML error page, parses to entries, and did not shrink by more than
``max_shrink`` against the largest copy confirmed good lately (resolver.lists.shrink).
Everything else keeps the old copy and is reported once, with its full reason and the copy
left in force, in the SourceResult the caller prints or turns into metrics. Sources are
fetched in parallel by a bounded pool, within one deadline for the whole run.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from resolver.lists import http as _http
from resolver.lists import shrink
from resolver.lists.build import atomic_write
from resolver.lists.catalogue import Catalogue, Source
from resolver.lists.parsers import parse
from resolver.lists.snapshot import downloaded_path, meta_path, read_meta, read_text

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
    deadline: float = 300.0  # whole run, well inside the systemd unit's 15-minute timeout
    max_bytes: int = 64 * 1024 * 1024
    retries: int = 2  # urllib3 retries after the first try (never after a DNS failure)
    backoff: float = 1.0  # urllib3 backoff_factor
    max_shrink: float = 0.5
    shrink_window: float = 30 * 86_400.0  # accepted copies this recent set the baseline
    workers: int = 8
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
    copy: str = ""  # the copy in force afterwards: downloaded, last good, bundled or none

    @property
    def failed(self) -> bool:
        """True when the source was due but no new or confirmed copy came of it."""
        return self.status in (Status.FAILED, Status.REJECTED)

    def line(self) -> str:
        """One line for people: id, outcome, full reason or size, and the copy in force."""
        detail = self.reason or (f"{self.entries} entries" if self.entries else "")
        tail = f" [in force: {self.copy}]" if self.copy else ""
        return f"{self.source:32} {self.status.value:13} {detail}{tail}"


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

    @property
    def exit_status(self) -> int:
        """0 when no due source failed, 2 when every due source did, else 1."""
        due = [r for r in self.results if r.status is not Status.SKIPPED]
        failed = sum(r.failed for r in due)
        return 0 if not failed else 2 if failed == len(due) else 1


def _write_meta(state_dir: Path, source_id: str, meta: dict[str, Any]) -> None:
    atomic_write(meta_path(state_dir, source_id), json.dumps(meta, indent=1).encode())


def _log_result(result: SourceResult) -> None:
    if result.failed:
        log.warning("list %s", result.line().strip())


def refresh(
    catalogue: Catalogue,
    state_dir: Path,
    *,
    policy: FetchPolicy = FetchPolicy(),
    session: requests.Session | None = None,
    only: Iterable[str] | None = None,
    force: bool = False,
    clock: Callable[[], float] = time.time,
    on_result: Callable[[SourceResult], None] = _log_result,
) -> RefreshReport:
    """Fetch every due URL source (all with ``force``) in parallel; never raises for one source.

    ``on_result`` hears each source once, as it finishes (by default: a log line per failure).
    """
    started = clock()
    wanted = set(only) if only is not None else None
    sources = [s for s in catalogue.sources if wanted is None or s.id in wanted]
    http = session or _http.session(
        policy.retries, policy.backoff, policy.workers, policy.user_agent
    )
    job = _Job(Path(state_dir), policy, http, force, clock, started + policy.deadline)

    def one(src: Source) -> SourceResult:
        result = job.run(src)
        on_result(result)
        return result

    try:
        with ThreadPoolExecutor(max(1, policy.workers), thread_name_prefix="lists") as pool:
            results = tuple(pool.map(one, sources))
    finally:
        if session is None:
            http.close()  # the server refreshes for weeks: no pooled sockets left behind
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    return RefreshReport(results, started, clock(), counts)


@dataclass(frozen=True, slots=True)
class _Job:
    """What every source's refresh in one run shares."""

    state_dir: Path
    policy: FetchPolicy
    http: requests.Session
    force: bool
    clock: Callable[[], float]
    deadline: float

    def run(self, src: Source) -> SourceResult:
        """One source's refresh; any unexpected error fails this source only."""
        try:
            result = self._refresh(src)
        except Exception as exc:  # noqa: BLE001 (one odd source must not stop the others)
            result = SourceResult(src.id, Status.FAILED, _http.describe(exc))
            _note_failure(self.state_dir, src.id, result.reason)
        return _with_copy(result, src, self.state_dir)

    def _refresh(self, src: Source) -> SourceResult:
        if not src.url:
            return SourceResult(src.id, Status.SKIPPED, "no url")
        meta = read_meta(self.state_dir, src.id)
        now = self.clock()
        if not self.force and now - float(meta.get("last_attempt", 0)) < src.refresh:
            return SourceResult(src.id, Status.SKIPPED, "not due")
        if now >= self.deadline:
            result = SourceResult(src.id, Status.FAILED, "not started before the run's deadline")
        else:
            meta["last_attempt"] = now
            result = self._download(src, meta)
        if result.failed:
            meta.update(last_error=result.reason, failures=int(meta.get("failures", 0)) + 1)
        else:
            meta.update(last_success=self.clock(), last_error="", failures=0)
        meta["last_status"] = result.status.value
        _write_meta(self.state_dir, src.id, meta)
        return result

    def _download(self, src: Source, meta: dict[str, Any]) -> SourceResult:
        t0 = self.clock()
        have_copy = downloaded_path(self.state_dir, src.id).exists()
        headers = _conditional_headers(meta) if have_copy else {}
        left = max(0.1, self.deadline - t0)
        timeouts = (min(self.policy.connect_timeout, left), min(self.policy.read_timeout, left))
        try:
            code, body, resp_headers, attempts = _http.get(
                self.http, str(src.url), headers, timeouts, self.policy.max_bytes,
                self.deadline, self.clock,
            )  # fmt: skip
        except _http.Failure as exc:
            took = self.clock() - t0
            return SourceResult(
                src.id, Status.FAILED, str(exc), 0, 0, exc.attempts, exc.http_status, took
            )
        took = self.clock() - t0
        if code == 304:
            entries = int(meta.get("entries", 0))
            return SourceResult(src.id, Status.NOT_MODIFIED, "", entries, 0, attempts, 304, took)
        stored = _Store(src, self.state_dir, self.policy, meta, self.clock())
        return stored.accept(body, resp_headers, attempts, took)


def _note_failure(state_dir: Path, source_id: str, reason: str) -> None:
    try:
        meta = read_meta(state_dir, source_id)
        meta.update(last_error=reason, failures=int(meta.get("failures", 0)) + 1)
        _write_meta(state_dir, source_id, meta)
    except Exception:  # noqa: BLE001 (the failure is already reported; metadata is a bonus)
        log.debug("could not record the failure of %s", source_id, exc_info=True)


def _with_copy(result: SourceResult, src: Source, state_dir: Path) -> SourceResult:
    """The result, saying which copy of the source the next compile will use."""
    if result.status in (Status.UPDATED, Status.NOT_MODIFIED):
        copy = "downloaded"
    elif downloaded_path(state_dir, src.id).exists():
        copy = "last good"
    elif src.bundled is not None and src.bundled.exists():
        copy = "bundled"
    else:
        copy = "none" if src.url else ""
    return replace(result, copy=copy)


def _conditional_headers(meta: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if meta.get("etag"):
        headers["If-None-Match"] = str(meta["etag"])
    if meta.get("last_modified"):
        headers["If-Modified-Since"] = str(meta["last_modified"])
    return headers


@dataclass(frozen=True, slots=True)
class _Store:
    """Decide on a downloaded body and keep it when plausible."""

    src: Source
    state_dir: Path
    policy: FetchPolicy
    meta: dict[str, Any]
    now: float

    def accept(
        self, body: bytes, headers: dict[str, str], attempts: int, took: float
    ) -> SourceResult:
        """UPDATED after writing the copy, or REJECTED with the reason."""
        src = self.src
        problem, entries = _validate(src, body, headers)
        if not problem:
            problem = self._shrunk(entries)
        if problem:
            return SourceResult(src.id, Status.REJECTED, problem, 0, len(body), attempts, 200, took)
        atomic_write(downloaded_path(self.state_dir, src.id), body)
        good = shrink.history(self.meta)
        self.meta.update(
            etag=headers.get("ETag", ""),
            last_modified=headers.get("Last-Modified", ""),
            entries=entries,
            bytes=len(body),
            good=shrink.remember(good, self.now, entries, self.policy.shrink_window),
        )
        return SourceResult(src.id, Status.UPDATED, "", entries, len(body), attempts, 200, took)

    def _shrunk(self, entries: int) -> str:
        have = downloaded_path(self.state_dir, self.src.id).exists()
        current = int(self.meta.get("entries", 0)) if have else 0
        good = shrink.history(self.meta) if have else []
        base = shrink.baseline(
            good, current, _bundled_entries(self.src), self.now, self.policy.shrink_window
        )
        if not shrink.too_small(entries, base, self.policy.max_shrink):
            return ""
        return (
            f"shrank from {base} to {entries} entries (limit {self.policy.max_shrink:.0%} "
            "of the largest copy confirmed good lately)"
        )


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


def _bundled_entries(src: Source) -> int:
    """Entries of the bundled copy (0 when there is none)."""
    if src.bundled is None or not src.bundled.exists():
        return 0
    return parse(read_text(src.bundled), src.format).entries  # .gz bundled files too
