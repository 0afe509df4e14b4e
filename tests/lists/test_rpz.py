from __future__ import annotations

from conftest import read

from resolver.lists.match import ListAction
from resolver.lists.rpz import parse_rpz
from resolver.lists.rules import Rule, Scope

A = ListAction
E, W = Scope.EXACT, Scope.WILDCARD


def test_sample_actions_triggers_and_directives() -> None:
    result = parse_rpz(read("lachan-sample.rpz"))
    assert result.rules == [
        Rule("bad.example", E, A.BLOCK),
        Rule("bad.example", W, A.BLOCK),
        Rule("wild.example", E, A.BLOCK),
        Rule("sub.wild.example", W, A.BLOCK),
        Rule("nodata.example", E, A.NODATA),
        Rule("ok.bad.example", E, A.ALLOW),
        Rule("drop.example", E, A.DROP),
        Rule("safe.example", E, A.REWRITE, (("CNAME", "safe.target.example."),)),
        Rule("local.example", E, A.REWRITE, (("A", "192.0.2.7"), ("AAAA", "2001:db8::7"))),
        Rule("txt.example", E, A.REWRITE, (("TXT", '"hello ; world"'),)),
        Rule("abs.example", E, A.BLOCK),
        Rule("rel.example", E, A.BLOCK),
    ]
    problems = {p.line_no: p.reason for p in result.problems}
    assert problems == {
        19: "trigger type rpz-ip not supported",
        20: "trigger type rpz-nsdname not supported",
        21: "owner 'outside.example.' is outside the zone rpz.lachan.test.",
        22: "invalid domain name 'bad..label'",
        23: "MX record not supported as a policy action",
        24: "CNAME action rpz-tcp-only. not supported",
    }


def test_real_vn_badsite_filter_zone() -> None:
    result = parse_rpz(read("vn-badsite-filter.rpz"))
    assert result.problems == []
    assert result.entries == 18
    assert result.rules[0] == Rule("000000.live", E, A.BLOCK)
    assert all(r.scope is E and r.action is A.BLOCK for r in result.rules)


def test_multiline_soa_and_default_owner() -> None:
    text = (
        "$ORIGIN zone.test.\n"
        "@ IN SOA ns.zone.test. admin.zone.test. (\n"
        "   1 ; serial\n"
        "   3600 600 86400 300 )\n"
        "x.example CNAME .\n"
        "   A 192.0.2.1\n"
    )
    result = parse_rpz(text)
    assert result.rules == [Rule("x.example", E, A.BLOCK)]
    assert [p.line_no for p in result.problems] == [6]
    assert "after a policy action" in result.problems[0].reason
