from __future__ import annotations

from conftest import read

from resolver.lists.adblock import parse_adblock
from resolver.lists.match import ListAction
from resolver.lists.rules import Rule, Scope

A = ListAction


def test_sample_rules_and_skips() -> None:
    result = parse_adblock(read("lachan-sample.adblock.txt"))
    assert result.rules == [
        Rule("ads.example", Scope.SUBTREE, A.BLOCK),
        Rule("tracker.example", Scope.SUBTREE, A.BLOCK),
        Rule("good.ads.example", Scope.SUBTREE, A.ALLOW),
        Rule("exact.example", Scope.EXACT, A.BLOCK),
        Rule("exact-allow.example", Scope.EXACT, A.ALLOW),
        Rule("plain.example", Scope.SUBTREE, A.BLOCK),
        Rule("wild.example", Scope.WILDCARD, A.BLOCK),
        Rule(
            "www.google.com.vn",
            Scope.EXACT,
            A.REWRITE,
            (("CNAME", "forcesafesearch.google.com."),),
        ),
        Rule("yandex.example", Scope.SUBTREE, A.REWRITE, (("A", "213.180.193.56"),)),
    ]
    skipped = {p.line_no: p.reason for p in result.problems}
    assert skipped == {
        12: "cosmetic rule (browser only)",
        13: "modifier $third-party cannot apply to DNS",
        14: "modifier $script cannot apply to DNS",
        15: "regular-expression rule not supported",
        16: "URL or pattern rule not expressible as a DNS name",
        17: "URL or pattern rule not expressible as a DNS name",
        18: "DNS modifier $client not supported",
        19: "$badfilter rule (disables another rule) not supported",
    }


def test_hostsvn_wildcard_patterns_are_skipped_and_counted() -> None:
    result = parse_adblock(read("hostsvn-adservers.adblock.txt"))
    assert len(result.problems) == 8
    assert all("pattern rule" in p.reason for p in result.problems)
    assert result.entries == 21
    assert all(r.scope is Scope.SUBTREE for r in result.rules)
