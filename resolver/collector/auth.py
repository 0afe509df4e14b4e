"""Accounts (argon2 hashes), sessions with a CSRF token each, and the access log."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from resolver.audit.label import LABEL
from resolver.collector.db import Database
from resolver.errors import LachanError

ROLES = ("auditor", "viewer")  # auditors may also export CSV and PDF
SESSION_SECONDS = 8 * 3600
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name costs as long as a wrong
    password. Made at the first login, not at import (one argon2 hash is ~90 ms)."""
    return _HASHER.hash("not a password")


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in person."""

    token: str
    name: str
    role: str
    csrf: str


def add_user(db: Database, name: str, role: str, password: str) -> None:
    """Create or update an account; the password is stored only as an argon2id hash."""
    if not LABEL.fullmatch(name):
        raise LachanError(f"NAME {name!r}: must be lower-case [a-z0-9_-]")
    if role not in ROLES:
        raise LachanError(f"--role {role!r}: must be one of {', '.join(ROLES)}")
    if len(password) < 10:
        raise LachanError("password: at least 10 characters")
    digest = _HASHER.hash(password)
    with db.tx() as tx:
        tx.run("DELETE FROM users WHERE name = ?", (name,))
        tx.run("INSERT INTO users (name, role, hash) VALUES (?, ?, ?)", (name, role, digest))


def log_access(db: Database, name: str, action: str, detail: str, now: int) -> None:
    """One line of the access log (logins, failed logins, exports)."""
    with db.tx() as tx:
        tx.run("INSERT INTO access_log (at, name, action, detail) VALUES (?, ?, ?, ?)",
               (now, name, action, detail))  # fmt: skip


def login(db: Database, name: str, password: str, now: int) -> Session | None:
    """A new session if the password is right; every attempt is logged."""
    with db.tx() as tx:
        rows = tx.run("SELECT role, hash FROM users WHERE name = ?", (name,))
    role, digest = rows[0] if rows else ("", _dummy_hash())
    try:
        _HASHER.verify(digest, password)
        ok = bool(rows)
    except (VerificationError, InvalidHashError):
        ok = False
    log_access(db, name[:64], "login" if ok else "login-failed", "", now)
    if not ok:
        return None
    session = Session(secrets.token_urlsafe(32), name, role, secrets.token_urlsafe(32))
    with db.tx() as tx:
        tx.run("DELETE FROM sessions WHERE expires < ?", (now,))
        tx.run("INSERT INTO sessions (token, name, csrf, expires) VALUES (?, ?, ?, ?)",
               (session.token, name, session.csrf, now + SESSION_SECONDS))  # fmt: skip
    return session


def session(db: Database, token: str, now: int) -> Session | None:
    """The live session of this cookie value, or None."""
    with db.tx() as tx:
        rows = tx.run("SELECT s.name, u.role, s.csrf FROM sessions s JOIN users u"
                      " ON u.name = s.name WHERE s.token = ? AND s.expires >= ?",
                      (token, now))  # fmt: skip
    return Session(token, *rows[0]) if rows else None


def logout(db: Database, token: str) -> None:
    """End a session."""
    with db.tx() as tx:
        tx.run("DELETE FROM sessions WHERE token = ?", (token,))


def access_log(db: Database, limit: int = 200) -> list[tuple[int, str, str, str]]:
    """The latest access-log lines, newest first."""
    with db.tx() as tx:
        rows = tx.run("SELECT at, name, action, detail FROM access_log ORDER BY at DESC"
                      " LIMIT ?", (limit,))  # fmt: skip
    return [(int(a), str(n), str(act), str(d)) for a, n, act, d in rows]
