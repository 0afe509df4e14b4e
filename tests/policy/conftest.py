"""Fixtures for the policy tests: the shipped profiles and a small list index."""

from __future__ import annotations

import pytest
from policy_helpers import POLICIES, DictLookup, listed

from resolver.lists.match import ListAction
from resolver.policy.loader import load_profiles
from resolver.policy.profile import Profile


@pytest.fixture(scope="session")
def profiles() -> dict[str, Profile]:
    return load_profiles(POLICIES)


@pytest.fixture(scope="session")
def lists() -> DictLookup:
    return DictLookup(
        {
            "pornsite.test": listed("adult", rule="pornsite.test"),
            "badbank.test": listed("phishing", rule="badbank.test"),
            "fakeshop.test": listed("scam", rule="fakeshop.test"),
            "betting.test": listed("gambling", rule="betting.test"),
            "roblox.com": listed("games", rule="roblox.com"),
            "facebook.com": listed("social", rule="facebook.com"),
            "tinder.com": listed("dating", rule="tinder.com"),
            "nordvpn.com": listed("vpn-proxy", rule="nordvpn.com"),
            "both.test": listed("adult", "malware", rule="both.test"),
            "olm.vn": listed("games", rule="olm.vn"),  # a false positive the school allows
            "exception.pornsite.test": listed(action=ListAction.ALLOW, rule="@@exception"),
            "tracker.cdn.test": listed("malware", rule="tracker.cdn.test"),
            "mail.google.com": listed("phishing", rule="mail.google.com"),
            "rpz-nodata.test": listed("adult", action=ListAction.NODATA, rule="rpz-nodata.test"),
            "rpz-drop.test": listed("malware", action=ListAction.DROP, rule="rpz-drop.test"),
            "rpz-cname.test": listed(
                "adult", action=ListAction.REWRITE, rule="rpz-cname.test",
                rewrite=(("CNAME", "Safe.Example."),),
            ),
        }
    )  # fmt: skip
