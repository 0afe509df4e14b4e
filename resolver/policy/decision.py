"""What decide() returns: Allow, Block, Rewrite or Canary, with EDE codes and answer modes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, NamedTuple

# The EDE codes and their extra texts are resolver/reply.py's one table.
from resolver.reply import BLOCKED_TEXT, EDE_FORGED_ANSWER


class AnswerMode(enum.Enum):
    """How the server answers a blocked name."""

    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    NULL = "null"  # 0.0.0.0 for A, :: for AAAA, NODATA for other types
    BLOCKPAGE = "blockpage"  # the profile's block-page address for A/AAAA, NODATA otherwise
    REFUSED = "refused"
    DROP = "drop"  # never answer; only an RPZ ``rpz-drop.`` rule asks for this
    LOCAL = "local"  # the RPZ rule's own A/AAAA/TXT records (``Block.local``), NODATA else


class Reason(enum.Enum):
    """Why a name was blocked: a bounded set, safe as a metrics label."""

    CATEGORY = "category"
    SCHEDULE = "schedule"
    DENY = "deny"
    KEYWORD = "keyword"
    BYPASS = "bypass"
    CNAME = "cname"


class Allow:
    """Answer normally; there is exactly one instance, ``ALLOW``, so the common case allocates nothing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ALLOW"

    def __reduce__(self) -> str:
        return "ALLOW"


ALLOW: Final = Allow()


class TemporaryAllow:
    """A static marker, never a final decision: a teacher opened this name for a while.

    decide() turns it into ALLOW unless the blocklists put the name in one of ``never``
    (adult content): a site opened with its subdomains must not open a listed adult name
    below it.
    """

    __slots__ = ("never",)

    def __init__(self, never: frozenset[str]) -> None:
        self.never = never

    def __repr__(self) -> str:
        return "TEMPORARY_ALLOW"


class Block(NamedTuple):
    """Do not resolve ``name``; answer in ``mode`` (already resolved from the profile or a rule).

    ``category`` is a catalogue id for list and schedule blocks, else the reason's own label
    (``deny``, ``keyword``, ``bypass``); ``source`` is the list source id, ``policies/<p>.yaml``
    or ``builtin``; ``rule`` the rule that matched (``*.example.com``, keyword ``casino``...).
    With ``monitor_only`` the server answers as if allowed and only counts the block.
    A NamedTuple rather than a frozen dataclass: as immutable, and several times cheaper to
    build, which matters because every blocked query builds one.
    """

    category: str
    source: str
    rule: str
    reason: Reason
    ede: int
    extra_text: str
    mode: AnswerMode
    ttl: int
    profile: str
    monitor_only: bool = False
    local: tuple[tuple[str, str], ...] = ()  # (TYPE, rdata text) for AnswerMode.LOCAL


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Answer with a CNAME to ``target`` followed by the target's records from the upstream."""

    target: str
    engine: str
    profile: str
    ede: int = EDE_FORGED_ANSWER
    extra_text: str = ""


@dataclass(frozen=True, slots=True)
class Canary:
    """The status name: the server answers TXT with site, profile and list version, NODATA else."""

    name: str
    profile: str


Decision = Allow | Block | Rewrite | Canary


def extra_text(label: str, value: str, profile: str) -> str:
    """The EDE EXTRA-TEXT: names the rule kind and profile, never anything about the client."""
    return BLOCKED_TEXT.format(label=label, value=value, profile=profile)
