"""What the shipped profiles block of sets that should not be blocked, name by name.

The harmless sets ship in ``blocklists/harmless/``: the Umbrella top 10,000 (some of it is
rightly blocked: ad-supported adult sites, DoH endpoints), UT1's ``child`` and
``sexual_education`` lists, and Vietnamese education, health and government names. Each name
is decided by the real decide() against the real index, at a fixed local time outside every
school schedule (scheduled games and social media are time-of-day choices, not errors).

Keyword rules are also measured on their own (``keyword_hits``): the never-block lists hold
the child and sex-education sets, so the decision alone would hide a keyword that matches
them; the keyword list itself must not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from resolver.lists.names import lines
from resolver.lists.snapshot import read_text
from resolver.policy.decide import Lookup, decide
from resolver.policy.decision import Block, Reason
from resolver.policy.profile import Profile

A = 1
# What a top site may rightly be blocked for (issue 19): anything else is over-blocking.
EXPECTED = frozenset({"adult", "gambling", "malware", "phishing", "scam", "doh"})
# name, files (relative to the catalogue's folder)
HARMLESS_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("top-10000", ("harmless/umbrella-top-10000.txt",)),
    ("ut1-child", ("harmless/ut1-child.txt",)),
    ("ut1-sexual-education", ("harmless/ut1-sexual-education.txt",)),
    (
        "vn-education-health-gov",
        ("harmless/vn-education.txt", "harmless/vn-health.txt", "harmless/vn-government.txt"),
    ),
)


@dataclass(frozen=True, slots=True)
class Blocked:
    """One harmless name a profile blocks, with the rule that did it."""

    name: str
    category: str
    reason: str
    rule: str
    source: str

    @property
    def expected(self) -> bool:
        """Blocked for a reason a top site may rightly be (adult, DoH, anti-bypass...)."""
        return self.category in EXPECTED or self.reason == Reason.BYPASS.value


@dataclass(frozen=True, slots=True)
class HarmlessResult:
    """One harmless set under one profile."""

    set: str
    profile: str
    size: int
    blocked: tuple[Blocked, ...]
    keyword_hits: tuple[tuple[str, str], ...]  # (name, keyword), never-block layer ignored

    @property
    def unexpected(self) -> tuple[Blocked, ...]:
        """Blocks other than adult, gambling, malware, phishing, scam, doh and anti-bypass."""
        return tuple(b for b in self.blocked if not b.expected)


def read_names(folder: Path, files: Sequence[str]) -> list[str]:
    """The names of a harmless set, in file order, without duplicates or comments."""
    seen: dict[str, None] = {}
    for file in files:
        for line in lines(read_text(folder / file)):
            name = line.split("#", 1)[0].strip().lower().rstrip(".")
            if name:
                seen.setdefault(name)
    return list(seen)


def blocked_by(
    profile: Profile, names: Sequence[str], when: datetime, lookup: Lookup
) -> list[Blocked]:
    """Every name ``profile`` blocks at ``when``, with its rule."""
    now = when.timestamp()
    out = []
    for name in names:
        decision = decide(profile, name, A, now, lookup)
        if isinstance(decision, Block):
            reason = decision.reason.value
            out.append(Blocked(name, decision.category, reason, decision.rule, decision.source))
    return out


def keyword_hits(profile: Profile, names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, keyword) for every name the profile's keyword rules match on their own."""
    matcher = profile.keywords
    hits = [(n, matcher.match(n)) for n in names] if matcher.keywords else []
    return [(n, k) for n, k in hits if k is not None]


def harmless_results(
    folder: Path, profiles: Sequence[Profile], when: datetime, lookup: Lookup
) -> list[HarmlessResult]:
    """Every harmless set under every profile."""
    out = []
    for set_name, files in HARMLESS_SETS:
        names = read_names(folder, files)
        for profile in profiles:
            at = when.replace(tzinfo=profile.timezone)
            blocked = tuple(blocked_by(profile, names, at, lookup))
            hits = tuple(keyword_hits(profile, names))
            out.append(HarmlessResult(set_name, profile.name, len(names), blocked, hits))
    return out
