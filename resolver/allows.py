"""Temporary allows: a teacher opens one name (and its subdomains) for a profile, for a while.

A school needs a blocked-but-harmless site open for a lesson within minutes, not a YAML edit
and a SIGHUP. An allow names a site, a profile, an end time, who asked and why. The allows
live in one small JSON file in lachan's state folder (``temporary-allows.json``), so every
worker and every restart sees the same set; serving processes watch the file and apply the
allows in force as the profile's temporarily opened names (``apply``), and drop them when
they expire. Every change is appended to ``temporary-allows.log`` (who, what, when, why),
the audit trail a school shows an inspector. No client address is ever part of an allow.

Some categories can never be opened this way (``NEVER_DEFAULT``: adult content): asking for
a name listed there is refused with the reason.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .audit.label import LABEL
from .errors import ConfigError
from .lists.names import NameError_, normalise
from .policy.profile import NameRules, Profile

MIN_SECONDS = 30 * 60  # a lesson
MAX_SECONDS = 7 * 86400  # a week; longer is a change to the profile, made by an admin
NEVER_DEFAULT = frozenset({"adult"})
NO_CATEGORY = "none"  # an allow of a name no category blocked (a deny list, a keyword)
FILE_NAME = "temporary-allows.json"
LOG_NAME = "temporary-allows.log"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class AllowError(ValueError):
    """A request that cannot be granted; the message is the reason, in one line."""


@dataclass(frozen=True, slots=True)
class TemporaryAllow:
    """``name`` and every name below it are allowed for ``profile`` until ``until``."""

    name: str
    profile: str
    until: float
    reason: str
    by: str
    created: float

    def active(self, now: float) -> bool:
        return self.created <= now < self.until


_FIELDS = ", ".join(f'"{name}"' for name in TemporaryAllow.__dataclass_fields__)


def parse_duration(text: str) -> int:
    """``90m``, ``2h``, ``7d`` (or bare seconds) to seconds, within 30 min and 7 days."""
    match = _DURATION.match(text)
    if match is None:
        raise AllowError(f"duration {text!r} is not like 45m, 2h or 3d")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise AllowError(f"duration {text!r} must be between 30m and 7d")
    return seconds


def normalise_site(text: str) -> str:
    """The name as lists and profiles hold it (lower case, punycode), or AllowError."""
    try:
        return normalise(text.removeprefix("*."))
    except NameError_ as exc:
        raise AllowError(f"{text!r}: {exc}") from None


def apply(
    profiles: dict[str, Profile],
    allows: Iterable[TemporaryAllow],
    now: float,
    never: frozenset[str] = NEVER_DEFAULT,
) -> dict[str, Profile]:
    """Profiles with the allows in force as their ``temporary`` names (others unchanged).

    decide() treats them as allowed, below the admin's deny list, and never for a name the
    lists put in one of ``never``: a site opened with its subdomains cannot open an adult
    name below it.
    """
    extra: dict[str, set[str]] = {}
    for allow in allows:
        if allow.active(now) and allow.profile in profiles:
            extra.setdefault(allow.profile, set()).add(allow.name)
    out = dict(profiles)
    for name, sites in extra.items():
        opened = NameRules(frozenset(sites), frozenset(sites))  # the site and every name below
        out[name] = dataclasses.replace(profiles[name], temporary=opened, never_open=never)
    return out


def without_allows(profile: Profile) -> Profile:
    """``profile`` as its files define it: what a name's category is, allows aside (extending
    an allow must still count the category that blocks the name)."""
    return dataclasses.replace(profile, temporary=NameRules()) if profile.temporary else profile


def next_change(allows: Iterable[TemporaryAllow], now: float) -> float | None:
    """When the set of allows in force changes next by the clock alone (an expiry)."""
    ends = [a.until for a in allows if a.until > now]
    starts = [a.created for a in allows if a.created > now]
    return min(ends + starts, default=None)


class AllowStore:
    """The allows file and its change log; every write holds an exclusive lock."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self.log_path = Path(state_dir) / LOG_NAME
        self._clock = clock

    def load(self) -> list[TemporaryAllow]:
        """Every allow on file, expired ones included (the file may not exist yet)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: cannot read temporary allows: {exc}") from None
        try:  # valid JSON of another shape (an edit by hand): the same one line, not a crash
            return [TemporaryAllow(**item) for item in data.get("allows", [])]
        except (AttributeError, TypeError):
            raise ConfigError(f"{self.path}: cannot read temporary allows: expected "
                              f"{{\"allows\": [{{{_FIELDS}}}, ...]}}") from None  # fmt: skip

    def in_force(self) -> list[TemporaryAllow]:
        now = self._clock()
        return [a for a in self.load() if a.active(now)]

    def add(self, name: str, profile: str, seconds: int, reason: str, by: str,
            category: str = NO_CATEGORY) -> TemporaryAllow:  # fmt: skip
        """Grant (or extend) an allow; the caller has checked profile and categories.

        ``category`` is what blocked the name when it was opened; only the log keeps it, for
        the ledger's count of allows per category (``granted``)."""
        if not reason.strip():
            raise AllowError("a reason is required (it is kept in the audit log)")
        now = self._clock()
        allow = TemporaryAllow(name, profile, now + seconds, reason.strip(), by, now)
        with self._locked():
            kept = [a for a in self.load() if a.until > now and (a.name, a.profile) != (
                name, profile)]  # fmt: skip
            self._write([*kept, allow])
            self._log("allow", allow, category=category or NO_CATEGORY)
        return allow

    def revoke(self, name: str, profile: str | None, by: str) -> list[TemporaryAllow]:
        """End the allows of ``name`` (for ``profile`` only, if given) now; returns them."""
        now = self._clock()
        with self._locked():
            allows = self.load()
            gone = [a for a in allows if a.name == name and profile in (None, a.profile)]
            self._write([a for a in allows if a not in gone and a.until > now])
            for allow in gone:
                self._log("revoke", dataclasses.replace(allow, by=by))
        return gone

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, allows: list[TemporaryAllow]) -> None:
        body = {"allows": [dataclasses.asdict(a) for a in allows]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)  # readers see the old file or the new one, never half

    def granted(self, start: float, end: float) -> dict[str, int]:
        """How many allows were granted in ``[start, end)``, per category: an aggregate that
        names no site and no teacher, for the ledger. A log written before categories were
        kept counts its allows as ``none``; a torn last line is skipped."""
        counts: dict[str, int] = {}
        try:
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return counts
        for line in lines:
            category = _granted_category(line, start, end)
            if category is not None:
                counts[category] = counts.get(category, 0) + 1
        return counts

    def _log(self, action: str, allow: TemporaryAllow, **more: str) -> None:
        line = {"at": self._clock(), "action": action, **dataclasses.asdict(allow), **more}
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(line, ensure_ascii=False) + "\n")


def _granted_category(line: str, start: float, end: float) -> str | None:
    """The category of an ``allow`` log line granted in ``[start, end)``, else None."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("action") != "allow":
        return None
    at = entry.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or not start <= at < end:
        return None
    category = entry.get("category")
    # The ledger holds labels only: anything else (an old line, a hand edit) counts as none.
    return category if isinstance(category, str) and LABEL.fullmatch(category) else NO_CATEGORY
