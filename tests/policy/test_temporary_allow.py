"""decide() with a teacher's temporary allows: open what was blocked, never adult content."""

from __future__ import annotations

import dataclasses

from policy_helpers import DictLookup, at, listed

from resolver.policy.decide import decide, decide_cname_chain
from resolver.policy.decision import ALLOW, Block, Reason
from resolver.policy.profile import NameRules, Profile

NOON = at("2026-12-02 12:00")
LISTS = DictLookup(
    {
        "games.test": listed("games", rule="games.test"),
        "adult.games.test": listed("adult", rule="adult.games.test"),
        "denied.test": listed("games", rule="denied.test"),
    }
)


def opened(profile: Profile, *names: str) -> Profile:
    return dataclasses.replace(profile, temporary=NameRules(frozenset(names), frozenset(names)))


def test_an_opened_site_and_its_subdomains_are_allowed(profiles: dict[str, Profile]) -> None:
    school = profiles["school"]
    assert isinstance(decide(school, "games.test", 1, NOON, LISTS), Block)
    school = opened(school, "games.test")
    assert decide(school, "games.test", 1, NOON, LISTS) is ALLOW
    assert decide(school, "www.games.test", 1, NOON, LISTS) is ALLOW


def test_an_adult_name_below_an_opened_site_stays_blocked(profiles: dict[str, Profile]) -> None:
    school = opened(profiles["school"], "games.test")
    decision = decide(school, "adult.games.test", 1, NOON, LISTS)
    assert isinstance(decision, Block) and decision.category == "adult"
    chain = decide_cname_chain(school, ["adult.games.test"], NOON, LISTS)
    assert chain is not None and chain.category == "adult"
    assert decide_cname_chain(school, ["www.games.test"], NOON, LISTS) is None


def test_the_admins_deny_list_beats_a_temporary_allow(profiles: dict[str, Profile]) -> None:
    school = dataclasses.replace(
        profiles["school"], deny=NameRules(frozenset({"denied.test"}), frozenset())
    )
    decision = decide(opened(school, "denied.test"), "denied.test", 1, NOON, LISTS)
    assert isinstance(decision, Block) and decision.reason is Reason.DENY


def test_safe_search_stays_on_for_an_opened_search_engine(profiles: dict[str, Profile]) -> None:
    school = opened(profiles["school"], "google.com")
    assert decide(school, "www.google.com", 1, NOON, LISTS) is not ALLOW
