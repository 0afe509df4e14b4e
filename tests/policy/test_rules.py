"""The compiled tables agree with the reference evaluation for any name (property test)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.policy.decide import _walk
from resolver.policy.decision import ALLOW, Reason
from resolver.policy.loader import profile_from_mapping
from resolver.policy.profile import _engine_rewrites, static_outcome
from resolver.policy.safesearch import rewrite_table

LABELS = ["a", "b", "x", "www", "google", "com", "resolver", "arpa", "bing", "_dns"]

PROFILE = profile_from_mapping(
    {
        "allow": ["*.a.com", "b.a.com", "*.x.resolver.arpa", "*.google.com", "a.b.x.com"],
        "deny": ["*.com", "*.b.a.com", "www.google.com", "*.x.com", "x.a.com"],
        "safe_search": {"google": "on", "bing": "on"},
    },
    "policies/property.yaml",
    "property",
)
SAFE = rewrite_table(PROFILE.safe_search)
REWRITES = _engine_rewrites(PROFILE, SAFE)


def compiled(name: str):
    rules = PROFILE.rules
    hit = rules.exact.get(name)
    if hit is None and name.endswith(rules.wild_suffixes):
        hit = _walk(rules.wild, name)
    return hit


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(LABELS), min_size=1, max_size=5))
def test_compiled_equals_reference(labels: list[str]) -> None:
    name = ".".join(labels)
    assert compiled(name) == static_outcome(PROFILE, name, SAFE, REWRITES)


def test_some_known_outcomes() -> None:
    for name in ("b.a.com", "q.b.a.com", "x.a.com", "www.google.com", "a.b.x.com", "z.x.com"):
        assert compiled(name) == static_outcome(PROFILE, name, SAFE, REWRITES), name
    assert compiled("q.b.a.com")[0] is ALLOW  # allow beats deny, however specific the deny
    assert compiled("z.x.com")[0].rule == "*.x.com"  # type: ignore[index,union-attr]
    # *.google.com is allowed, which beats its deny, but safe search still applies.
    assert compiled("www.google.com") == (ALLOW, REWRITES["google"])
    assert compiled("x.com")[0].reason is Reason.DENY  # type: ignore[index,union-attr]
