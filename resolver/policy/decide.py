"""The decision for one query: pure, synchronous, no I/O, no logging; the hot path of lachan."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from resolver.lists.match import ListAction, ListMatch
from resolver.policy.decision import (
    ALLOW,
    AnswerMode,
    Block,
    Decision,
    Reason,
    Rewrite,
    TemporaryAllow,
)
from resolver.policy.profile import NEVER_BLOCK, Profile, Rules, Static
from resolver.policy.safesearch import REWRITE_QTYPES
from resolver.policy.schedule import category_scheduled
from resolver.reply import EDE_FILTERED

_RPZ_MODES = {ListAction.NODATA: AnswerMode.NODATA, ListAction.DROP: AnswerMode.DROP}
_LIST_MEMO_SIZE = 4096  # templates are few (action x categories x source), except rewrites


class Lookup(Protocol):
    """The blocklist index: ``lookup(name)`` with name lowercase, dotted, no trailing dot."""

    def lookup(self, name: str) -> ListMatch | None: ...


def decide(profile: Profile, name: str, qtype: int, now: float, lookup: Lookup) -> Decision:
    """Decide what to answer for ``name``/``qtype`` asked by a client of ``profile``.

    ``name`` is lowercase, dotted, without the trailing dot; ``now`` is POSIX time in seconds
    (``time.time()`` from the server's injected clock), read only when a scheduled category
    matches. The order, and why each step sits where it does:

    1. canary: the status name must answer even where every list would block it;
    2. anti-bypass: the Firefox canary, iCloud Private Relay and DDR are answered the same
       whatever the operator's lists or overrides say (turn the switch off instead);
    3. allow overrides: the operator's exception beats every block after it, but not safe
       search: a school that allows ``*.google.com`` for Classroom must keep SafeSearch on;
    4. deny overrides: before safe search, so denying www.bing.com blocks it outright;
    5. safe search: a rewrite, for A/AAAA/HTTPS only (other types of the name go on);
    6. blocklists with schedules: one index probe; list exceptions (``@@``) end here as allow,
       and so does a never-block category (education, health, child) that the name is listed
       in, over any category it shares except the profile's security ones (a hijacked health
       site still serves malware);
    7. keywords: last, as the broadest and most false-positive-prone rule.

    Steps 1-5 depend on the name alone, so they are resolved when the profile is compiled
    and cost one dict probe plus a walk of the name's parents over the wildcard table.
    """
    rules = profile.rules
    static = rules.exact.get(name)
    # endswith() over all wildcard parents is one C call; most names skip the walk after it.
    if static is None and name.endswith(rules.wild_suffixes):
        static = _walk(rules.wild, name)
    if static is not None:
        final, rewrite = static
        if rewrite is not None and qtype in REWRITE_QTYPES:
            return rewrite
        if isinstance(final, TemporaryAllow):
            return _temporarily_allowed(profile, rules, final, name, now, lookup)
        if final is not None:
            return final
    match = lookup.lookup(name)
    if match is not None:
        listed = _list_decision(profile, rules, match, now)
        if listed is not None:
            return listed
    if rules.keywords is not None:
        keyword = rules.keywords.match(name)
        if keyword is not None:
            return _keyword_block(rules, keyword)
    return ALLOW


def decide_cname_chain(
    profile: Profile, names: Iterable[str], now: float, lookup: Lookup
) -> Block | None:
    """Block an allowed answer whose CNAME chain reaches a blocked name (CNAME cloaking).

    ``names`` are the chain's targets, normalised like query names. Anti-bypass, deny and
    list blocks count; keywords do not (CDN host names would trip them); an allow override
    on a target clears that target.
    """
    rules = profile.rules
    for name in names:
        static = rules.exact.get(name)
        if static is None and name.endswith(rules.wild_suffixes):
            static = _walk(rules.wild, name)
        final = static[0] if static is not None else None
        if isinstance(final, TemporaryAllow):
            final = _temporarily_allowed(profile, rules, final, name, now, lookup)
        if final is ALLOW:
            continue
        if isinstance(final, Block):
            return _as_cname(final)
        match = lookup.lookup(name)
        if match is not None:
            listed = _list_decision(profile, rules, match, now)
            if isinstance(listed, Block):
                return _as_cname(listed)
    return None


def _temporarily_allowed(
    profile: Profile, rules: Rules, opened: TemporaryAllow, name: str, now: float, lookup: Lookup
) -> Decision:
    """ALLOW for a name a teacher opened, unless a list names it in a never-opened category."""
    match = lookup.lookup(name)
    if match is not None and match.categories & opened.never:
        listed = _list_decision(profile, rules, match, now)
        if listed is not None:
            return listed
    return ALLOW


def _walk(wild: dict[str, Static], name: str) -> Static | None:
    # Most specific parent first; compile_rules folded every shallower rule into each entry.
    dot = name.find(".")
    while dot >= 0:
        static = wild.get(name[dot + 1 :])
        if static is not None:
            return static
        dot = name.find(".", dot + 1)
    return None


def _list_decision(profile: Profile, rules: Rules, match: ListMatch, now: float) -> Decision | None:
    # The serving path's matches are shared per index template (Index.lookup_shared), so a
    # decision that does not depend on the clock is made once per template and profile.
    # Keyed by identity: the entry holds the match, so its id cannot be reused meanwhile.
    memo = rules.list_memo
    known = memo.get(id(match))
    if known is not None and known[0] is match:
        return known[1]  # type: ignore[return-value]
    if _depends_on_clock(rules, match):
        return _scheduled_decision(profile, rules, match, now)
    decision = _timeless_decision(rules, match)
    if len(memo) >= _LIST_MEMO_SIZE:
        memo.clear()
    memo[id(match)] = (match, decision)
    return decision


def clockless_list_decision(profile: Profile, match: ListMatch) -> Decision | None:
    """The list decision for ``match`` under ``profile`` if the clock cannot change it, else
    None (a scheduled category decides). For prepared answers (resolver/fastpath.py)."""
    rules = profile.rules
    if _depends_on_clock(rules, match):
        return None
    return _list_decision(profile, rules, match, 0.0)  # the clock is not read on this path


def _depends_on_clock(rules: Rules, match: ListMatch) -> bool:
    """A scheduled category of the match decides, unless an exception or an always-blocked
    category settles it first."""
    categories = match.categories
    if not rules.scheduled or rules.scheduled.isdisjoint(categories):
        return False
    if not NEVER_BLOCK.isdisjoint(categories):
        return False
    return match.action is not ListAction.ALLOW and rules.blocked_set.isdisjoint(categories)


def _timeless_decision(rules: Rules, match: ListMatch) -> Decision | None:
    if match.action is ListAction.ALLOW:
        return ALLOW
    categories = match.categories
    if not NEVER_BLOCK.isdisjoint(categories):
        return never_block_decision(rules, match)
    for category in rules.blocked_order:
        if category in categories:
            return _list_block(rules, match, category, Reason.CATEGORY)
    return None


def never_block_decision(rules: Rules, match: ListMatch) -> Decision:
    """A name in a never-block category: blocked only by the profile's security categories
    it is also listed in; otherwise allowed, which also keeps keyword rules off it."""
    for category in rules.blocked_order:
        if category in match.categories and category in rules.security:
            return _list_block(rules, match, category, Reason.CATEGORY)
    return ALLOW


def _scheduled_decision(
    profile: Profile, rules: Rules, match: ListMatch, now: float
) -> Decision | None:
    # Only categories that are not always blocked reach here (see _depends_on_clock).
    for category in sorted(rules.scheduled & match.categories):
        if category_scheduled(profile.schedules, category, now, profile.timezone):
            return _list_block(rules, match, category, Reason.SCHEDULE)
    return None


def _list_block(rules: Rules, match: ListMatch, category: str, reason: Reason) -> Decision:
    mode = _RPZ_MODES.get(match.action, rules.mode)
    if match.action is ListAction.REWRITE:
        target = _cname_target(match)
        if target is not None:
            return Rewrite(target, "rpz", rules.profile, extra_text=rules.texts[category])
        mode = AnswerMode.LOCAL  # A/AAAA/TXT local data is the answer, as in unbound
    return Block(
        category=category,
        source=match.source,
        rule=match.rule,
        reason=reason,
        ede=rules.ede[category],
        extra_text=rules.texts[category],
        mode=mode,
        ttl=rules.ttl,
        profile=rules.profile,
        monitor_only=rules.monitor_only,
        local=match.rewrite if mode is AnswerMode.LOCAL else (),
    )


def _cname_target(match: ListMatch) -> str | None:
    # An RPZ local-data CNAME becomes a rewrite (the target resolved upstream, as unbound does).
    for rtype, rdata in match.rewrite:
        if rtype.upper() == "CNAME":
            return rdata.rstrip(".").lower() or None
    return None


def _keyword_block(rules: Rules, keyword: str) -> Block:
    return Block(
        category=Reason.KEYWORD.value,
        source=rules.source,
        rule=keyword,
        reason=Reason.KEYWORD,
        ede=EDE_FILTERED,
        extra_text=rules.keyword_text,
        mode=rules.mode,
        ttl=rules.ttl,
        profile=rules.profile,
        monitor_only=rules.monitor_only,
    )


def _as_cname(block: Block) -> Block:
    return block._replace(reason=Reason.CNAME)
