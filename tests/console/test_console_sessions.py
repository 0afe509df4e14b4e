"""Sessions expire, CSRF tokens must match, failed logins are limited per source and in total."""

from __future__ import annotations

from resolver.console.accounts import Account
from resolver.console.sessions import (
    LOGIN_PER_SOURCE,
    LOGIN_TOTAL,
    LOGIN_WINDOW,
    LoginLimiter,
    Sessions,
    csrf_ok,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_when_its_minutes_are_over() -> None:
    clock = Clock()
    sessions = Sessions(10, clock)
    sid = sessions.open(Account("co-lan", "teacher"))
    clock.now += 599
    assert sessions.get(sid) is not None
    clock.now += 1
    assert sessions.get(sid) is None and sessions.get("made-up") is None


def test_the_csrf_token_is_the_sessions_own() -> None:
    sessions = Sessions(10, Clock())
    session = sessions.get(sessions.open(Account("a", "admin")))
    assert session is not None and csrf_ok(session, session.csrf)
    assert not csrf_ok(session, "") and not csrf_ok(session, None)
    wrong_last = "y" if session.csrf.endswith("x") else "x"  # always differs from the real one
    assert not csrf_ok(session, session.csrf[:-1] + wrong_last)


def test_failed_logins_are_limited_per_source_then_forgotten_after_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock)
    for _ in range(LOGIN_PER_SOURCE):
        assert not limiter.blocked("10.0.0.1")
        limiter.failed("10.0.0.1")
    assert limiter.blocked("10.0.0.1") and not limiter.blocked("10.0.0.2")
    clock.now += LOGIN_WINDOW + 1
    assert not limiter.blocked("10.0.0.1")


def test_many_sources_together_hit_the_total_limit() -> None:
    limiter = LoginLimiter(Clock())
    for n in range(LOGIN_TOTAL):
        limiter.failed(f"10.0.1.{n}")
    assert limiter.blocked("10.0.2.1")
