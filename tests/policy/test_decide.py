"""decide() and decide_cname_chain() on the shipped profiles, table by table."""

from __future__ import annotations

import pytest
from policy_helpers import DictLookup, at, listed

from resolver.policy.decide import decide, decide_cname_chain
from resolver.policy.decision import ALLOW, AnswerMode, Block, Canary, Reason, Rewrite
from resolver.policy.loader import profile_from_mapping

A, AAAA, MX, TXT, SVCB, HTTPS = 1, 28, 15, 16, 64, 65
WEEKEND_NOON = at("2026-12-05 12:00")  # Saturday: no schedule is active

# (profile, name, qtype, expected reason, expected category, expected EDE)
BLOCKS = [
    ("under16", "pornsite.test", A, Reason.CATEGORY, "adult", 17),
    ("under16", "www.pornsite.test", AAAA, Reason.CATEGORY, "adult", 17),
    ("under16", "badbank.test", A, Reason.CATEGORY, "phishing", 15),
    ("under16", "fakeshop.test", A, Reason.CATEGORY, "scam", 15),
    ("under16", "betting.test", MX, Reason.CATEGORY, "gambling", 17),
    ("under16", "tinder.com", HTTPS, Reason.CATEGORY, "dating", 17),
    ("under16", "nordvpn.com", SVCB, Reason.CATEGORY, "vpn-proxy", 17),
    ("under16", "both.test", A, Reason.CATEGORY, "malware", 15),  # security outranks filtered
    ("isp-default", "pornsite.test", A, Reason.CATEGORY, "adult", 16),  # state-mandated list
    ("isp-default", "both.test", A, Reason.CATEGORY, "adult", 16),  # censored outranks security
    ("isp-default", "badbank.test", A, Reason.CATEGORY, "phishing", 15),
    ("school", "roblox.com", A, Reason.CATEGORY, "games", 17),
    ("under16", "casino-royale.test", A, Reason.KEYWORD, "keyword", 17),
    ("under16", "xn--cado-online.com", A, Reason.KEYWORD, "keyword", 17),
    ("under16", "best.casino", A, Reason.KEYWORD, "keyword", 17),  # the TLD is a label too
    ("under16", "use-application-dns.net", A, Reason.BYPASS, "bypass", 17),
    ("under16", "mask.icloud.com", HTTPS, Reason.BYPASS, "bypass", 17),
    ("under16", "mask-h2.icloud.com", AAAA, Reason.BYPASS, "bypass", 17),
    ("isp-default", "_dns.resolver.arpa", SVCB, Reason.BYPASS, "bypass", 17),
]


@pytest.mark.parametrize(("profile", "name", "qtype", "reason", "category", "ede"), BLOCKS)
def test_blocks(profiles, lists, profile, name, qtype, reason, category, ede) -> None:
    decision = decide(profiles[profile], name, qtype, WEEKEND_NOON, lists)
    assert isinstance(decision, Block)
    assert (decision.reason, decision.category, decision.ede) == (reason, category, ede)
    assert decision.profile == profile and not decision.monitor_only
    assert f"profile={profile}" in decision.extra_text and "help: 111" in decision.extra_text


ALLOWS = [
    ("under16", "example.com", A),
    ("under16", "essex.ac.uk", A),  # keyword 'sex' inside the allowed word 'essex'
    ("under16", "www.middlesex.gov.uk", AAAA),
    ("under16", "avocado.vn", A),
    ("under16", "exception.pornsite.test", A),  # the list's own @@ exception
    ("under16", "roblox.com", A),  # games are only scheduled in under16
    ("isp-default", "roblox.com", A),
    ("isp-default", "betting.test", A),  # gambling is not blocked for ISP subscribers
    ("isp-default", "casino.test", A),  # no keywords at the ISP
    ("isp-default", "use-application-dns.net", A),  # the switch is off there
    ("isp-default", "www.google.com", A),  # no safe search unless opted in
    ("school", "olm.vn", A),  # allow override beats the games list
    ("school", "live.olm.vn", A),
    ("school", "us02web.zoom.us", A),
    ("school", "classroom.google.com", A),
    ("under16", "www.google.com.vn", MX),  # safe search only rewrites A/AAAA/HTTPS
]


@pytest.mark.parametrize(("profile", "name", "qtype"), ALLOWS)
def test_allows(profiles, lists, profile, name, qtype) -> None:
    assert decide(profiles[profile], name, qtype, WEEKEND_NOON, lists) is ALLOW


REWRITES = [
    ("under16", "www.google.com", A, "forcesafesearch.google.com", "google"),
    ("under16", "www.google.com.vn", AAAA, "forcesafesearch.google.com", "google"),
    ("under16", "google.com.vn", A, "forcesafesearch.google.com", "google"),
    ("under16", "encrypted.google.com", A, "forcesafesearch.google.com", "google"),
    ("under16", "ipv6.google.co.uk", AAAA, "forcesafesearch.google.com", "google"),
    ("under16", "www.youtube.com", HTTPS, "restrict.youtube.com", "youtube"),
    ("under16", "youtubei.googleapis.com", A, "restrict.youtube.com", "youtube"),
    ("school", "m.youtube.com", A, "restrictmoderate.youtube.com", "youtube"),
    ("school", "www.youtube-nocookie.com", AAAA, "restrictmoderate.youtube.com", "youtube"),
    ("under16", "www.bing.com", A, "strict.bing.com", "bing"),
    ("under16", "duckduckgo.com", HTTPS, "safe.duckduckgo.com", "duckduckgo"),
    ("under16", "yandex.ru", A, "familysearch.yandex.ru", "yandex"),
    ("under16", "www.ya.ru", A, "familysearch.yandex.ru", "yandex"),
    ("under16", "www.ecosia.org", A, "strict-safe-search.ecosia.org", "ecosia"),
    ("under16", "pixabay.com", A, "safesearch.pixabay.com", "pixabay"),
    ("under16", "search.brave.com", A, "forcesafe.search.brave.com", "brave"),
]


@pytest.mark.parametrize(("profile", "name", "qtype", "target", "engine"), REWRITES)
def test_safe_search_rewrites(profiles, lists, profile, name, qtype, target, engine) -> None:
    decision = decide(profiles[profile], name, qtype, WEEKEND_NOON, lists)
    assert isinstance(decision, Rewrite)
    assert (decision.target, decision.engine, decision.ede) == (target, engine, 4)


def test_allowed_and_rewritten_results_are_shared(profiles, lists) -> None:
    p = profiles["under16"]
    first = decide(p, "www.google.com", A, WEEKEND_NOON, lists)
    assert decide(p, "www.google.de", AAAA, WEEKEND_NOON, lists) is first
    assert decide(p, "example.org", A, WEEKEND_NOON, lists) is ALLOW


def test_canary_answers_in_every_profile(profiles, lists) -> None:
    for profile in profiles.values():
        decision = decide(profile, "status.lachan.arpa", TXT, WEEKEND_NOON, lists)
        assert decision == Canary("status.lachan.arpa", profile.name)


def test_bypass_answer_modes(profiles, lists) -> None:
    p = profiles["under16"]
    firefox = decide(p, "use-application-dns.net", A, WEEKEND_NOON, lists)
    ddr = decide(p, "_dns.resolver.arpa", SVCB, WEEKEND_NOON, lists)
    assert isinstance(firefox, Block) and firefox.mode is AnswerMode.NXDOMAIN
    assert isinstance(ddr, Block) and ddr.mode is AnswerMode.NODATA
    assert ddr.rule == "*.resolver.arpa" and ddr.source == "builtin"


def test_rpz_actions_keep_their_answer(profiles, lists) -> None:
    p = profiles["under16"]
    nodata = decide(p, "rpz-nodata.test", A, WEEKEND_NOON, lists)
    drop = decide(p, "rpz-drop.test", A, WEEKEND_NOON, lists)
    cname = decide(p, "rpz-cname.test", A, WEEKEND_NOON, lists)
    assert isinstance(nodata, Block) and nodata.mode is AnswerMode.NODATA
    assert isinstance(drop, Block) and drop.mode is AnswerMode.DROP
    assert isinstance(cname, Rewrite) and cname.target == "safe.example"
    assert decide(profiles["isp-default"], "rpz-drop.test", A, WEEKEND_NOON, lists).mode is (
        AnswerMode.DROP
    )


def _custom(**doc: object):
    return profile_from_mapping(doc, "policies/custom.yaml", "custom")


def test_order_allow_beats_deny_but_not_safe_search() -> None:
    p = _custom(
        allow=["*.google.com", "ok.bad.test"],
        deny=["*.bad.test", "www.bing.com"],
        safe_search={"google": "on", "bing": "on"},
    )
    empty = DictLookup({})
    assert decide(p, "ok.bad.test", A, 0, empty) is ALLOW
    assert decide(p, "x.bad.test", A, 0, empty).reason is Reason.DENY  # type: ignore[union-attr]
    assert decide(p, "bad.test", A, 0, empty) is ALLOW  # *.bad.test does not cover the apex
    deny_bing = decide(p, "www.bing.com", A, 0, empty)
    assert isinstance(deny_bing, Block) and deny_bing.rule == "www.bing.com"
    assert isinstance(decide(p, "www.google.com", A, 0, empty), Rewrite)
    assert decide(p, "www.google.com", MX, 0, empty) is ALLOW
    assert decide(p, "mail.google.com", A, 0, DictLookup({"mail.google.com": listed("adult")})) is (
        ALLOW
    )


def test_a_profile_idn_entry_matches_the_uts46_name_browsers_ask() -> None:
    p = _custom(deny=["straße.de"], allow=["*.faß.de"], block=["adult"])
    lists = DictLookup({"www.xn--fa-hia.de": listed("adult")})
    denied = decide(p, "xn--strae-oqa.de", A, 0, DictLookup({}))
    assert isinstance(denied, Block) and denied.reason is Reason.DENY
    assert decide(p, "www.xn--fa-hia.de", A, 0, lists) is ALLOW


def test_deeper_wildcard_does_not_hide_a_stronger_shallower_rule() -> None:
    p = _custom(allow=["*.x.resolver.arpa"], deny=["*.deny.test"], block=["adult"])
    empty = DictLookup({})
    hit = decide(p, "a.x.resolver.arpa", A, 0, empty)
    assert isinstance(hit, Block) and hit.reason is Reason.BYPASS  # anti-bypass beats allow
    deep = _custom(allow=["*.ok.deny.test"], deny=["*.deny.test"])
    assert decide(deep, "a.ok.deny.test", A, 0, empty) is ALLOW
    assert decide(deep, "a.no.deny.test", A, 0, empty).rule == "*.deny.test"  # type: ignore[union-attr]


def test_monitor_only_flags_every_block() -> None:
    p = _custom(block=["adult"], deny=["d.test"], keywords={"block": ["porn"]}, monitor_only=True)
    lookup = DictLookup({"a.test": listed("adult")})
    for name in ("a.test", "d.test", "porn.example", "use-application-dns.net"):
        decision = decide(p, name, A, 0, lookup)
        assert isinstance(decision, Block) and decision.monitor_only, name


def test_block_mode_and_ttl_from_profile() -> None:
    p = _custom(
        block=["adult"], block_answer={"mode": "blockpage", "ttl": 60, "address_v4": "192.0.2.7"}
    )
    decision = decide(p, "a.test", A, 0, DictLookup({"a.test": listed("adult")}))
    assert isinstance(decision, Block)
    assert (decision.mode, decision.ttl, decision.source) == (AnswerMode.BLOCKPAGE, 60, "test")
    assert p.answer.address_v4 == "192.0.2.7"


def test_cname_chain_cloaking(profiles, lists) -> None:
    p = profiles["under16"]
    cloaked = decide_cname_chain(p, ["edge.cdn.test", "tracker.cdn.test"], WEEKEND_NOON, lists)
    assert isinstance(cloaked, Block)
    assert (cloaked.reason, cloaked.category, cloaked.ede) == (Reason.CNAME, "malware", 15)
    assert decide_cname_chain(p, ["edge.cdn.test", "example.net"], WEEKEND_NOON, lists) is None
    assert decide_cname_chain(p, ["casino.cdn.test"], WEEKEND_NOON, lists) is None  # no keywords
    school = profiles["school"]
    assert decide_cname_chain(school, ["olm.vn"], WEEKEND_NOON, lists) is None  # allowed target
    bypass = decide_cname_chain(p, ["mask.icloud.com"], WEEKEND_NOON, lists)
    assert isinstance(bypass, Block) and bypass.reason is Reason.CNAME


def test_list_decisions_are_shared_but_schedules_still_follow_the_clock(profiles, lists) -> None:
    # The serving index returns one match object per template, and decide() keeps a decision
    # per (profile, match) unless the clock matters: a scheduled category is re-decided.
    under16 = profiles["under16"]
    school_night = at("2026-12-01 22:00")  # Tuesday evening: games are scheduled off
    first = decide(under16, "pornsite.test", A, WEEKEND_NOON, lists)
    assert isinstance(first, Block)
    assert decide(under16, "www.pornsite.test", A, school_night, lists) is first
    games = [
        decide(under16, "roblox.com", A, when, lists)
        for when in (WEEKEND_NOON, school_night, WEEKEND_NOON, school_night)
    ]
    assert games[0] is ALLOW and games[2] is ALLOW
    assert isinstance(games[1], Block) and games[1].reason is Reason.SCHEDULE
    assert isinstance(games[3], Block) and games[3].category == "games"


NEVER_BLOCK_LISTS = DictLookup(
    {
        "sexed.test": listed("health", rule="sexed.test"),  # keyword 'sex' would match
        "clinic.test": listed("health", "drugs", rule="clinic.test"),  # on both lists
        "hijacked.test": listed("health", "malware", rule="hijacked.test"),
        "kids.test": listed("child", "games", rule="kids.test"),
    }
)


@pytest.mark.parametrize("profile", ["under16", "school", "isp-default"])
@pytest.mark.parametrize("name", ["sexed.test", "clinic.test", "kids.test"])
def test_a_never_block_listing_beats_keywords_and_other_categories(profiles, profile, name) -> None:
    decision = decide(profiles[profile], name, A, WEEKEND_NOON, NEVER_BLOCK_LISTS)
    assert decision is ALLOW


def test_the_same_names_are_blocked_without_the_never_block_listing(profiles) -> None:
    under16, school = profiles["under16"], profiles["school"]
    bare = DictLookup({"clinic.test": listed("drugs"), "kids.test": listed("games")})
    assert isinstance(decide(under16, "sexed.test", A, WEEKEND_NOON, bare), Block)  # keyword
    assert isinstance(decide(under16, "clinic.test", A, WEEKEND_NOON, bare), Block)
    assert isinstance(decide(school, "kids.test", A, WEEKEND_NOON, bare), Block)


@pytest.mark.parametrize("profile", ["under16", "school", "isp-default"])
def test_security_categories_still_block_a_never_block_name(profiles, profile) -> None:
    decision = decide(profiles[profile], "hijacked.test", A, WEEKEND_NOON, NEVER_BLOCK_LISTS)
    assert isinstance(decision, Block) and decision.category == "malware"


def test_never_block_wins_over_a_scheduled_category_at_any_time(profiles) -> None:
    school_night = at("2026-12-07 22:00")  # Monday night: games are scheduled in under16
    bare = DictLookup({"kids.test": listed("games")})
    under16 = profiles["under16"]
    assert isinstance(decide(under16, "kids.test", A, school_night, bare), Block)
    assert decide(under16, "kids.test", A, school_night, NEVER_BLOCK_LISTS) is ALLOW
