"""Console accounts: argon2id hashes in a users file (mode 0600), roles admin and teacher."""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import ConfigError

ROLES = ("admin", "teacher")
_USER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against for an unknown user, so the answer time tells nothing. Made at the
    first login, not at import: one argon2 hash costs ~90 ms, which every `lachan serve`
    paid before it could answer a query (the console module is imported by the app)."""
    return _HASHER.hash("lachan: no such user")


@dataclass(frozen=True, slots=True)
class Account:
    user: str
    role: str


class AccountError(ValueError):
    """A bad user name, role or password; the message is one line."""


def read_users(path: Path) -> dict[str, dict[str, str]]:
    """user -> {"role", "hash"}; an absent file is no user (the console then lets no one in)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: console.users_file: cannot read: {exc}") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise ConfigError(f"{path}: console.users_file: no 'users' mapping")
    return users


def set_password(path: Path, user: str, password: str, role: str) -> None:
    """Add the user or change their password and role; the file is written 0600 atomically."""
    if not _USER.match(user):
        raise AccountError(f"user name {user!r}: use letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise AccountError("the password must have at least 8 characters")
    users = read_users(path)
    users[user] = {"role": role, "hash": _HASHER.hash(password)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"users": users}, out, indent=1)
    os.chmod(tmp, 0o600)  # an existing tmp file keeps its mode through O_CREAT
    if os.geteuid() == 0:  # run as root: the file must stay readable by the service's user,
        folder = path.parent.stat()  # who owns the state folder (systemd's StateDirectory)
        os.chown(tmp, folder.st_uid, folder.st_gid)
    os.replace(tmp, path)


def check_password(path: Path, user: str, password: str) -> Account | None:
    """The account when the password matches, else None (same cost for unknown users)."""
    entry = read_users(path).get(user)
    stored = entry.get("hash") if isinstance(entry, dict) else None
    try:
        # An entry without a hash is verified against the dummy too, and refused after it
        # (before, its password was the dummy's).
        _HASHER.verify(stored if isinstance(stored, str) else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if entry is None or not isinstance(stored, str) or entry.get("role") not in ROLES:
        return None
    return Account(user, entry["role"])
