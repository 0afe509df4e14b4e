"""Profiles and the pure per-query decision: safe search, schedules, keywords, anti-bypass."""

from resolver.policy.decide import Lookup, decide, decide_cname_chain
from resolver.policy.decision import (
    ALLOW,
    Allow,
    AnswerMode,
    Block,
    Canary,
    Decision,
    Reason,
    Rewrite,
)
from resolver.policy.loader import load_profile, load_profiles
from resolver.policy.profile import Profile

__all__ = [
    "ALLOW",
    "Allow",
    "AnswerMode",
    "Block",
    "Canary",
    "Decision",
    "Lookup",
    "Profile",
    "Reason",
    "Rewrite",
    "decide",
    "decide_cname_chain",
    "load_profile",
    "load_profiles",
]
