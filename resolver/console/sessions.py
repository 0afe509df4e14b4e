"""Login sessions that expire, their CSRF tokens, and the login rate limit: pure, clock injected."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .accounts import Account

MAX_SESSIONS = 1_000  # a school has tens of staff; the cap bounds memory under abuse
LOGIN_WINDOW = 60.0
LOGIN_PER_SOURCE = 5  # failed logins per address per window (a typo or two, not a guesser)
LOGIN_TOTAL = 30  # all failed logins per window, whatever the address


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    expires: float
    csrf: str


class Sessions:
    """Random session ids to sessions; an expired one is gone when next looked up."""

    def __init__(self, minutes: int, clock: Callable[[], float]) -> None:
        self._seconds = minutes * 60
        self._clock = clock
        self._by_id: dict[str, Session] = {}

    def open(self, account: Account) -> str:
        now = self._clock()
        if len(self._by_id) >= MAX_SESSIONS:
            self._by_id = {k: s for k, s in self._by_id.items() if s.expires > now}
            while len(self._by_id) >= MAX_SESSIONS:
                self._by_id.pop(next(iter(self._by_id)))  # the oldest goes first
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = Session(account, now + self._seconds, secrets.token_urlsafe(24))
        return sid

    def get(self, sid: str | None) -> Session | None:
        session = self._by_id.get(sid or "")
        if session is not None and session.expires <= self._clock():
            del self._by_id[sid or ""]
            return None
        return session

    def close(self, sid: str | None) -> None:
        self._by_id.pop(sid or "", None)


def csrf_ok(session: Session, token: str | None) -> bool:
    return same_token(session.csrf, token or "")


def same_token(expected: str, given: str) -> bool:
    """Constant-time equality of two tokens; compare_digest refuses non-ASCII text (a TypeError,
    so a 500) and a form may send anything, so both are compared as UTF-8 bytes."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


class LoginLimiter:
    """Counts failed logins per source and in total over a sliding window; memory bounded."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._failures: list[tuple[float, str]] = []

    def blocked(self, source: str) -> bool:
        self._forget()
        mine = sum(1 for _, who in self._failures if who == source)
        return mine >= LOGIN_PER_SOURCE or len(self._failures) >= LOGIN_TOTAL

    def failed(self, source: str) -> None:
        self._forget()
        if len(self._failures) < LOGIN_TOTAL:
            self._failures.append((self._clock(), source))

    def _forget(self) -> None:
        horizon = self._clock() - LOGIN_WINDOW
        self._failures = [f for f in self._failures if f[0] > horizon]
