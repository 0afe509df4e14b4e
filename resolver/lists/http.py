"""One HTTP GET of a list source: urllib3 Retry on a requests Session, size cap, full reasons.

Retries are urllib3's (connect and read errors, 429 and 5xx, with back-off); a name that does
not resolve is not retried, since asking again seconds later only adds minutes to an offline
refresh. Every failure becomes a ``Failure`` whose text is the complete underlying reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NameResolutionError
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>: ")


class Failure(Exception):
    """A download failed after urllib3's retries; ``attempts`` counts the requests made."""

    def __init__(self, reason: str, attempts: int = 1, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.attempts = attempts
        self.http_status = http_status


class _Retry(Retry):
    """urllib3's Retry, except that a failed name resolution ends the attempts at once."""

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        if isinstance(error, NameResolutionError):
            raise _attach(MaxRetryError(_pool, url, error), self)
        try:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exc:
            raise _attach(exc, self) from exc.reason


def _attach(exc: MaxRetryError, retry: Retry) -> MaxRetryError:
    exc.lachan_attempts = len(retry.history) + 1  # type: ignore[attr-defined]
    return exc


def session(retries: int, backoff: float, pool: int, user_agent: str) -> requests.Session:
    """A Session whose adapters retry idempotent GETs the urllib3 way."""
    retry = _Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff,
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        respect_retry_after_header=False,  # a hostile Retry-After must not stall the refresh
    )
    http = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    http.headers["User-Agent"] = user_agent
    return http


def get(
    http: requests.Session,
    url: str,
    headers: dict[str, str],
    timeouts: tuple[float, float],
    max_bytes: int,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[int, bytes, dict[str, str], int]:
    """(status, body, headers, attempts) of a 200 or 304; ``Failure`` for anything else."""
    headers = {"Accept-Encoding": "gzip", **headers}
    try:
        with http.get(url, headers=headers, stream=True, timeout=timeouts) as resp:
            attempts = _attempts(resp)
            if resp.status_code not in (200, 304):
                raise Failure(f"HTTP {resp.status_code}", attempts, resp.status_code)
            if resp.status_code == 304:
                return 304, b"", dict(resp.headers), attempts
            _check_length(resp.headers.get("Content-Length"), max_bytes, attempts)
            body = _read_capped(resp, max_bytes, deadline, clock, attempts)
            return 200, body, dict(resp.headers), attempts
    except requests.RequestException as exc:
        raise Failure(describe(exc), _failed_attempts(exc)) from None


def _attempts(resp: requests.Response) -> int:
    retries = getattr(resp.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


def _failed_attempts(exc: requests.RequestException) -> int:
    cause = exc.args[0] if exc.args else None
    return int(getattr(cause, "lachan_attempts", 1))


def _check_length(value: str | None, max_bytes: int, attempts: int) -> None:
    if value is None:
        return
    if not value.strip().isdigit():
        raise Failure(f"malformed Content-Length header {value!r}", attempts, 200)
    if int(value) > max_bytes:
        raise Failure(f"body of {int(value)} bytes exceeds the {max_bytes}-byte cap", attempts, 200)


def _read_capped(
    resp: requests.Response, max_bytes: int, deadline: float, clock: Callable[[], float], n: int
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise Failure(f"body exceeds the {max_bytes}-byte cap", n, 200)
        if clock() > deadline:
            raise Failure("download still running at the refresh deadline", n, 200)
        chunks.append(chunk)
    return b"".join(chunks)


def describe(exc: BaseException) -> str:
    """The whole reason behind a requests error, without urllib3's wrapping and object ids."""
    cause: BaseException = exc
    while cause.args and isinstance(cause.args[0], BaseException):
        cause = cause.args[0]
    if isinstance(cause, MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    return f"{type(cause).__name__}: {_OBJECT_REPR.sub('', str(cause))}"
