"""A filtering profile: what one group of clients is protected from, as a frozen snapshot,
and its form compiled for the hot path (static names resolved ahead of time, blocks prebuilt).

One module: a Profile compiles its rules when built, and the rules read the profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

from resolver.policy.decision import (
    ALLOW,
    AnswerMode,
    Block,
    Canary,
    Decision,
    Reason,
    Rewrite,
    TemporaryAllow,
    extra_text,
)
from resolver.policy.keywords import KeywordMatcher
from resolver.policy.safesearch import SafeSearch, rewrite_table
from resolver.policy.schedule import Window
from resolver.reply import EDE_BLOCKED, EDE_CENSORED, EDE_FILTERED, SAFE_SEARCH_RULE_TEXT

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
        # Frozen, so the compiled tables are set once here and never change afterwards.
        object.__setattr__(self, "rules", compile_rules(self))


# -- the compiled form ----------------------------------------------------------------------
# (final decision or None, safe-search rewrite or None) for a statically known name.
Static = tuple[Decision | TemporaryAllow | None, Rewrite | None]

FIREFOX_CANARY: Final = "use-application-dns.net"
ICLOUD_RELAY: Final = ("mask.icloud.com", "mask-h2.icloud.com")
DDR_ZONE: Final = "resolver.arpa"
BUILTIN: Final = "builtin"


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything decide() reads for one profile, shaped so the allowed case is two dict probes."""

    exact: dict[str, Static]
    wild: dict[str, Static]
    wild_suffixes: tuple[str, ...]  # ".parent" of every wild key: one C-level endswith() test
    blocked_order: tuple[str, ...]
    scheduled: frozenset[str]
    texts: dict[str, str]
    ede: dict[str, int]
    keywords: KeywordMatcher | None
    keyword_text: str
    mode: AnswerMode
    ttl: int
    monitor_only: bool
    profile: str
    source: str
    blocked_set: frozenset[str] = frozenset()  # blocked_order as a set
    security: frozenset[str] = frozenset()  # still blocks a name in a never-block category
    # decide()'s per-profile memo of list decisions that do not depend on the clock
    list_memo: dict[int, tuple[object, object]] = field(default_factory=dict, compare=False)


def bypass_rules(switches: AntiBypass) -> tuple[dict[str, AnswerMode], dict[str, AnswerMode]]:
    """(exact name → mode, wildcard parent → mode) for the anti-bypass switches that are on."""
    exact: dict[str, AnswerMode] = {}
    wild: dict[str, AnswerMode] = {}
    if switches.firefox_canary:
        exact[FIREFOX_CANARY] = AnswerMode.NXDOMAIN
    if switches.icloud_private_relay:
        exact.update(dict.fromkeys(ICLOUD_RELAY, AnswerMode.NXDOMAIN))
    if switches.designated_resolver:
        # NODATA, not NXDOMAIN: RFC 9462 clients then simply stay on plain DNS with us.
        exact[DDR_ZONE] = wild[DDR_ZONE] = AnswerMode.NODATA
    return exact, wild


def category_ede(profile: Profile, category: str) -> int:
    """RFC 8914 code: 16 for state-mandated lists, 15 for security lists, 17 for the rest."""
    if category in profile.censored:
        return EDE_CENSORED
    if category in profile.security:
        return EDE_BLOCKED
    return EDE_FILTERED


def _block(profile: Profile, reason: Reason, rule: str, mode: AnswerMode | None) -> Block:
    source = BUILTIN if reason is Reason.BYPASS else profile.source
    return Block(
        category=reason.value,
        source=source,
        rule=rule,
        reason=reason,
        ede=EDE_FILTERED,
        extra_text=extra_text("rule", reason.value, profile.name),
        mode=mode or profile.answer.mode,
        ttl=profile.answer.ttl,
        profile=profile.name,
        monitor_only=profile.monitor_only,
    )


def _bypass_match(
    name: str, exact: dict[str, AnswerMode], wild: dict[str, AnswerMode]
) -> tuple[str, AnswerMode] | None:
    if name in exact:
        return name, exact[name]
    labels = name.split(".")
    for i in range(1, len(labels)):
        parent = ".".join(labels[i:])
        if parent in wild:
            return "*." + parent, wild[parent]
    return None


def static_outcome(
    profile: Profile, name: str, safe: dict[str, tuple[str, str]], rewrites: dict[str, Rewrite]
) -> Static | None:
    """The reference evaluation of the name-only steps (the order decide() documents)."""
    if name == profile.canary:
        return Canary(name, profile.name), None
    hit = _bypass_match(name, *bypass_rules(profile.anti_bypass))
    if hit is not None:
        return _block(profile, Reason.BYPASS, hit[0], hit[1]), None
    rewrite = rewrites[safe[name][0]] if name in safe else None
    if profile.allow.matches(name) is not None:
        return ALLOW, rewrite
    rule = profile.deny.matches(name)
    if rule is not None:
        return _block(profile, Reason.DENY, rule, None), None
    if profile.temporary.matches(name) is not None:  # after deny: the admin's word stands
        return TemporaryAllow(profile.never_open), rewrite
    return (None, rewrite) if rewrite is not None else None


def _engine_rewrites(profile: Profile, safe: dict[str, tuple[str, str]]) -> dict[str, Rewrite]:
    # One shared Rewrite per engine, so a rewritten query allocates nothing either.
    return {
        engine: Rewrite(target, engine, profile.name, extra_text=_rewrite_text(engine, profile))
        for engine, target in safe.values()
    }


def _rewrite_text(engine: str, profile: Profile) -> str:
    return SAFE_SEARCH_RULE_TEXT.format(engine=engine, profile=profile.name)


def _static_tables(profile: Profile) -> tuple[dict[str, Static], dict[str, Static]]:
    safe = rewrite_table(profile.safe_search)
    rewrites = _engine_rewrites(profile, safe)
    b_exact, b_wild = bypass_rules(profile.anti_bypass)
    names = {profile.canary, *b_exact, *safe, *profile.allow.exact, *profile.deny.exact,
             *profile.temporary.exact}  # fmt: skip
    parents = {*b_wild, *profile.allow.wildcard, *profile.deny.wildcard,
               *profile.temporary.wildcard}  # fmt: skip
    exact = {n: s for n in names if (s := static_outcome(profile, n, safe, rewrites))}
    # "*.<parent>" stands for any name below parent that no deeper wildcard covers: the
    # runtime walk goes most specific first, so the first parent it finds is that one.
    wild = {p: s for p in parents if (s := static_outcome(profile, "*." + p, safe, rewrites))}
    return exact, wild


def _blocked_order(profile: Profile) -> tuple[str, ...]:
    # Report the most serious category when a name is in several: censored, security, rest.
    order = {EDE_CENSORED: 0, EDE_BLOCKED: 1, EDE_FILTERED: 2}

    def rank(category: str) -> tuple[int, str]:
        return (order[category_ede(profile, category)], category)

    return tuple(sorted(profile.block, key=rank))


def compile_rules(profile: Profile) -> Rules:
    """Build the hot-path tables for ``profile``."""
    exact, wild = _static_tables(profile)
    scheduled = frozenset().union(*(w.categories for w in profile.schedules)) - profile.block
    every = profile.block | scheduled
    return Rules(
        exact=exact,
        wild=wild,
        wild_suffixes=tuple("." + parent for parent in wild),
        blocked_order=_blocked_order(profile),
        blocked_set=frozenset(_blocked_order(profile)),
        security=profile.security,
        scheduled=scheduled,
        texts={c: extra_text("category", c, profile.name) for c in every},
        ede={c: category_ede(profile, c) for c in every},
        keywords=profile.keywords if profile.keywords.keywords else None,
        keyword_text=extra_text("rule", Reason.KEYWORD.value, profile.name),
        mode=profile.answer.mode,
        ttl=profile.answer.ttl,
        monitor_only=profile.monitor_only,
        profile=profile.name,
        source=profile.source,
    )
