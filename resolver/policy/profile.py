"""A filtering profile: what one group of clients is protected from, as a frozen snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from resolver.policy.decision import AnswerMode
from resolver.policy.keywords import KeywordMatcher
from resolver.policy.safesearch import SafeSearch
from resolver.policy.schedule import Window

if TYPE_CHECKING:
    from resolver.policy.rules import Rules

CATEGORIES: Final = frozenset(
    {
        "adult", "gambling", "drugs", "violence", "malware", "phishing", "scam", "games",
        "social", "dating", "vpn-proxy", "doh", "piracy", "shorteners", "hacking",
    }
)  # fmt: skip
SECURITY_DEFAULT: Final = frozenset({"malware", "phishing", "scam"})
# Catalogue categories marked never_block (blocklists/catalogue.yaml): a name listed in one is
# not blocked by keywords, nor by a category it shares (except the profile's security ones).
NEVER_BLOCK: Final = frozenset({"education", "health", "child"})
DEFAULT_TIMEZONE: Final = "Asia/Ho_Chi_Minh"
DEFAULT_CANARY: Final = "status.lachan.arpa"


@dataclass(frozen=True, slots=True)
class NameRules:
    """Override names: ``exact`` names and ``wildcard`` parents (``*.example.com`` → example.com).

    As in RPZ, ``example.com`` matches only itself and ``*.example.com`` only names below it;
    write both to cover a whole site.
    """

    exact: frozenset[str] = frozenset()
    wildcard: frozenset[str] = frozenset()

    def matches(self, name: str) -> str | None:
        """The rule (as written) that matches ``name``, most specific first, or None."""
        if name in self.exact:
            return name
        dot = name.find(".")
        while dot >= 0:
            parent = name[dot + 1 :]
            if parent in self.wildcard:
                return "*." + parent
            dot = name.find(".", dot + 1)
        return None


@dataclass(frozen=True, slots=True)
class AntiBypass:
    """Switches for names that would let a device step round the filter."""

    firefox_canary: bool = True  # use-application-dns.net → NXDOMAIN: Firefox keeps its DoH off
    icloud_private_relay: bool = True  # mask(-h2).icloud.com → NXDOMAIN: Safari falls back to us
    designated_resolver: bool = True  # resolver.arpa (RFC 9462 DDR) → NODATA: no upgrade to DoH


@dataclass(frozen=True, slots=True)
class BlockAnswer:
    """How blocked names are answered: mode, TTL of the negative answer, block-page addresses."""

    mode: AnswerMode = AnswerMode.NXDOMAIN
    ttl: int = 300
    address_v4: str | None = None
    address_v6: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Profile:
    """One profile as loaded from ``policies/<name>.yaml``; ``rules`` is its compiled form.

    Compared and hashed by identity: a reload builds new Profiles, so a memo keyed on one
    (client → profile, per-profile counters) can never mix two snapshots.
    """

    name: str
    source: str
    block: frozenset[str] = frozenset()
    censored: frozenset[str] = frozenset()  # state-mandated lists: EDE 16 Censored
    security: frozenset[str] = SECURITY_DEFAULT  # operator's security lists: EDE 15 Blocked
    allow: NameRules = NameRules()
    deny: NameRules = NameRules()
    safe_search: SafeSearch = SafeSearch({})
    schedules: tuple[Window, ...] = ()
    timezone: ZoneInfo = ZoneInfo(DEFAULT_TIMEZONE)
    keywords: KeywordMatcher = KeywordMatcher.build(())
    anti_bypass: AntiBypass = AntiBypass()
    answer: BlockAnswer = BlockAnswer()
    monitor_only: bool = False
    canary: str = DEFAULT_CANARY
    description: str = ""
    temporary: NameRules = NameRules()  # names opened for a while (resolver/allows.py)
    never_open: frozenset[str] = frozenset({"adult"})  # categories no temporary allow opens
    rules: Rules = field(init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, source={self.source!r})"

    def __post_init__(self) -> None:
        from resolver.policy.rules import compile_rules

        # Frozen, so the compiled tables are set once here and never change afterwards.
        object.__setattr__(self, "rules", compile_rules(self))
