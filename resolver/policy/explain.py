"""Words for ``lachan explain``: which profile, which decision, which rule, which answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from resolver.policy.decide import Lookup, decide
from resolver.policy.decision import Allow, AnswerMode, Canary, Decision, Rewrite
from resolver.policy.profile import NEVER_BLOCK, Profile
from resolver.reply import EDE_NAMES

QTYPES = {
    "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
    "SRV": 33, "SVCB": 64, "HTTPS": 65, "ANY": 255,
}  # fmt: skip
_MODE_WORDS = {
    AnswerMode.NXDOMAIN: "NXDOMAIN with the SOA in authority",
    AnswerMode.NODATA: "NOERROR/NODATA with the SOA in authority",
    AnswerMode.NULL: "0.0.0.0 for A, :: for AAAA, NODATA for other types",
    AnswerMode.BLOCKPAGE: "the block-page address for A/AAAA, NODATA for other types",
    AnswerMode.REFUSED: "REFUSED",
    AnswerMode.DROP: "no answer at all (RPZ drop)",
    AnswerMode.LOCAL: "the RPZ rule's own records of the asked type, NODATA for other types",
}


def parse_qtype(text: str) -> int:
    """``AAAA`` → 28, ``TYPE65``/``65`` → 65; ValueError otherwise."""
    key = text.strip().upper()
    if key in QTYPES:
        return QTYPES[key]
    number = key.removeprefix("TYPE")
    if number.isdigit() and 0 < int(number) < 65536:
        return int(number)
    raise ValueError(f"unknown query type {text!r} (e.g. A, AAAA, HTTPS, TYPE65)")


def parse_when(text: str, profile: Profile) -> datetime:
    """``2026-12-01 22:00`` (or ISO 8601) in the profile's time zone unless an offset is given."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"cannot read time {text!r} (e.g. '2026-12-01 22:00')") from None
    return when if when.tzinfo else when.replace(tzinfo=profile.timezone)


def answer_words(decision: Decision, name: str, profile: Profile) -> str:
    """The answer the server would send, in words."""
    if isinstance(decision, Allow):
        return "resolved normally (from the cache or the upstream)"
    if isinstance(decision, Canary):
        return f"TXT status record (site, profile {profile.name}, list version); NODATA for others"
    if isinstance(decision, Rewrite):
        return f"CNAME {name} -> {decision.target}, then the target's records from the upstream"
    if decision.monitor_only:
        return "resolved normally: monitor_only, the block is only counted"
    return f"{_MODE_WORDS[decision.mode]}, TTL {decision.ttl}"


def decision_lines(decision: Decision) -> list[str]:
    """The decision and the rule behind it."""
    if isinstance(decision, Allow):
        return ["decision: allow (no rule blocks or rewrites this name)"]
    if isinstance(decision, Canary):
        return [f"decision: canary ({decision.name})"]
    if isinstance(decision, Rewrite):
        return [
            f"decision: rewrite ({_rewrite_kind(decision)})",
            f"ede:      {decision.ede} {EDE_NAMES[decision.ede]}: {decision.extra_text}",
        ]
    return [
        f"decision: block (reason {decision.reason.value}, category {decision.category})",
        f"rule:     {decision.rule} from {decision.source}",
        f"ede:      {decision.ede} {EDE_NAMES.get(decision.ede, '')}: {decision.extra_text}",
    ]


def _rewrite_kind(decision: Rewrite) -> str:
    if decision.engine == "rpz":
        return "a list's CNAME rewrite"
    return f"safe search, engine {decision.engine}"


def explain(
    profile: Profile, why: str, name: str, qtype: int, when: datetime, lookup: Lookup
) -> list[str]:
    """Every line ``lachan explain`` prints."""
    name = name.strip().rstrip(".").lower()
    decision = decide(profile, name, qtype, when.timestamp(), lookup)
    qtype_text = next((k for k, v in QTYPES.items() if v == qtype), f"TYPE{qtype}")
    never = never_block_lines(profile, lookup, name)
    decided = decision_lines(decision)
    if never and isinstance(decision, Allow):
        decided = ["decision: allow (a never-block list names it, see below)"]
    lines = [
        f"query:    {name} {qtype_text} at {when.astimezone(profile.timezone):%Y-%m-%d %H:%M %Z}",
        f"profile:  {profile.name} ({why})",
        *decided,
        *never,
        f"answer:   {answer_words(decision, name, profile)}",
    ]
    return lines + list_lines(lookup, name)


def never_block_lines(profile: Profile, lookup: Lookup, name: str) -> list[str]:
    """The never-block listing of ``name``, and which blocked categories it overrides."""
    match = lookup.lookup(name)
    if match is None or NEVER_BLOCK.isdisjoint(match.categories):
        return []
    listed = ", ".join(sorted(match.categories & NEVER_BLOCK))
    scheduled = frozenset().union(*(w.categories for w in profile.schedules))
    conflict = match.categories & (profile.block | scheduled)
    line = f"never:    listed in never-block {listed}: keyword rules do not apply"
    overridden = sorted(conflict - profile.security)
    if overridden:
        line += f"; overrides {', '.join(overridden)} (also listed, blocked by this profile)"
    security = sorted(conflict & profile.security)
    if security:
        line += f"; security category {', '.join(security)} still blocks"
    return [line]


def list_lines(lookup: Any, name: str) -> list[str]:
    """What the blocklist index holds for ``name`` and its parents, when it can say."""
    explain_index = getattr(lookup, "explain", None)
    if explain_index is None:
        return []
    matches = explain_index(name)
    if not matches:
        return ["lists:    no entry for this name or its parents"]
    return [
        f"lists:    {listed} ({slot}) {m.action.value} {','.join(sorted(m.categories))} "
        f"source {m.source} rule {m.rule}"
        for listed, slot, m in matches
    ]
