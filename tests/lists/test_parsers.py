from __future__ import annotations

import pytest
from conftest import read

from resolver.lists.match import ListAction
from resolver.lists.parsers import FORMATS, parse, parse_domains, parse_hosts
from resolver.lists.rules import Rule, Scope

BLOCK = ListAction.BLOCK


def test_hosts_real_file_with_quirks() -> None:
    result = parse_hosts(read("stevenblack-gambling.hosts"))
    names = [r.name for r in result.rules]
    assert names[0] == "crownbet.com.au"
    assert "jackpotcity.com" in names and "www.jackpotcity.com" in names  # case folded
    assert names.count("eestiloto.ee") == 2  # duplicates are kept; the compiler merges them
    assert "casinobitco.in" in names
    assert [(p.line_no, p.reason) for p in result.problems] == [
        (28, "single-label name 'sportsbook' (would block a whole TLD)")
    ]
    assert all(r.scope is Scope.SUBTREE and r.action is BLOCK for r in result.rules)


@pytest.mark.parametrize(
    ("line", "names", "reason"),
    [
        ("0.0.0.0 a.example b.example # two names", ["a.example", "b.example"], None),
        ("127.0.0.1\tc.example", ["c.example"], None),
        (":: d.example", ["d.example"], None),
        ("127.0.0.1 localhost", [], "loopback entry"),
        ("0.0.0.0", [], "address without a name"),
        ("example.com", [], "is not an IP address"),
        ("0.0.0.0 bad_name!.com", [], "invalid domain name"),
        ("# only a comment", [], None),
    ],
)
def test_hosts_lines(line: str, names: list[str], reason: str | None) -> None:
    result = parse_hosts(line + "\n")
    assert [r.name for r in result.rules] == names
    if reason is None:
        assert result.problems == []
    else:
        assert len(result.problems) == 1 and reason in result.problems[0].reason
        assert result.problems[0].line_no == 1 and result.problems[0].text == line


def test_domains_sample_counts_every_rejection() -> None:
    result = parse_domains(read("lachan-sample.domains"))
    assert result.rules == [
        Rule("good.example", Scope.SUBTREE, BLOCK),
        Rule("wild.example", Scope.WILDCARD, BLOCK),
        Rule("upper.example", Scope.SUBTREE, BLOCK),
        Rule("xn--cccc-0x5ac.vn", Scope.SUBTREE, BLOCK),
    ]
    assert [p.line_no for p in result.problems] == [6, 7, 8, 9, 10]
    reasons = " | ".join(p.reason for p in result.problems)
    for part in ("IP address", "invalid domain name", "single-label", "more than one field"):
        assert part in reasons


def test_chongluadao_idn_and_case() -> None:
    result = parse(read("chongluadao-pihole.txt"), "domains")
    names = {r.name for r in result.rules}
    assert {"vant6.com", "www.vant6.com", "xn--cccc-0x5ac.vn", "www.xn--cccc-0x5ac.vn"} <= names
    assert result.problems == []
    assert result.entries == 27


def test_same_list_in_three_formats_gives_the_same_names() -> None:
    hosts = parse(read("blocklistproject-drugs.hosts"), "hosts")
    domains = parse(read("blocklistproject-drugs.domains"), "domains")
    adblock = parse(read("blocklistproject-drugs.adblock.txt"), "adblock")
    assert hosts.rules == domains.rules == adblock.rules
    assert hosts.entries == 27 and not hosts.problems and not adblock.problems


def test_real_hosts_vn_and_shadowwhisperer() -> None:
    vn = parse(read("hostsvn-adult-vn.hosts"), "hosts")
    assert vn.entries > 15 and not vn.problems
    sw = parse(read("shadowwhisperer-adult.txt"), "domains")
    assert sw.entries == 50 and not sw.problems


def test_unknown_format() -> None:
    assert set(FORMATS) == {"hosts", "domains", "wildcard", "allow", "adblock", "rpz"}
    with pytest.raises(KeyError):
        parse("x.example", "csv")


def test_allow_format_makes_exceptions() -> None:
    assert parse("ok.example\n", "allow").rules == [
        Rule("ok.example", Scope.SUBTREE, ListAction.ALLOW)
    ]
