"""The canary TXT answer (``status.lachan.arpa``): one format, parsed by probes, formatted by the server.

The answer is one TXT record per ``key=value`` string, e.g.::

    status.lachan.arpa. 0 IN TXT "site=thpt-le-hong-phong"
    status.lachan.arpa. 0 IN TXT "profile=school"
    status.lachan.arpa. 0 IN TXT "index=sha256:4f1c..."
    status.lachan.arpa. 0 IN TXT "index_age=5400"
    status.lachan.arpa. 0 IN TXT "version=0.1.0"

One string per record, never several per record, because resolvers and client libraries differ
in how they join the character-strings of one record (c-ares concatenates them). ``site``,
``profile``, ``index`` and ``index_age`` (whole seconds since the index was built) are
required; ``version`` and ``kind`` are optional; unknown keys are kept in ``extra`` so the
format can grow. Keys are ``[a-z0-9_]``; values have no whitespace and at most 200 bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from resolver.errors import AuditError

CANARY_NAME = "status.lachan.arpa"
REQUIRED = ("site", "profile", "index", "index_age")
_KEY = re.compile(r"[a-z0-9_]{1,32}")
_VALUE = re.compile(r"[^\s]{1,200}")


class CanaryError(AuditError):
    """A canary answer does not follow the format."""


@dataclass(frozen=True, slots=True)
class CanaryStatus:
    """What a filtering site says about itself in its canary answer."""

    site: str
    profile: str
    index: str
    index_age: int
    version: str = ""
    kind: str = ""
    extra: tuple[tuple[str, str], ...] = ()


def _pair(key: str, value: str) -> str:
    if not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
        raise CanaryError(f"canary: bad key or value {key!r}={value!r}")
    return f"{key}={value}"


def format_canary(status: CanaryStatus) -> tuple[str, ...]:
    """The TXT strings to answer with, one per record, in a fixed order."""
    if status.index_age < 0:
        raise CanaryError("canary: index_age is negative")
    pairs = [("site", status.site), ("profile", status.profile), ("index", status.index),
             ("index_age", str(status.index_age))]  # fmt: skip
    pairs += [(k, v) for k, v in (("version", status.version), ("kind", status.kind)) if v]
    return tuple(_pair(k, v) for k, v in [*pairs, *status.extra])


def _split(texts: Iterable[str | bytes]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for text in texts:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        for token in raw.split():
            key, sep, value = token.partition("=")
            if not sep or not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
                raise CanaryError(f"canary: {token!r} is not key=value")
            if key in fields:
                raise CanaryError(f"canary: {key} appears twice")
            fields[key] = value
    return fields


def parse_canary(texts: Iterable[str | bytes]) -> CanaryStatus:
    """Parse the TXT strings of a canary answer (tolerates several pairs in one string)."""
    fields = _split(texts)
    missing = [k for k in REQUIRED if k not in fields]
    if missing:
        raise CanaryError(f"canary: missing {', '.join(missing)}")
    age = fields.pop("index_age")
    if not age.isdigit():
        raise CanaryError(f"canary: index_age {age!r} is not whole seconds")
    known = {k: fields.pop(k, "") for k in ("site", "profile", "index", "version", "kind")}
    return CanaryStatus(index_age=int(age), extra=tuple(sorted(fields.items())), **known)
