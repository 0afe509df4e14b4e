"""Leave-one-source-out coverage and over-blocking: pure parts, then the bundled data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from resolver.commands.lists import lists
from resolver.lists.catalogue import default_catalogue_path, load_catalogue
from resolver.lists.coverage import LoadedSource, RuleSet, leave_one_out, profile_wider, sample
from resolver.lists.coverage_report import CoverageReport, measure, to_json
from resolver.lists.coverage_text import markdown
from resolver.lists.match import ListAction
from resolver.lists.rules import Rule, Scope

BLOCK = ListAction.BLOCK
ROOT = default_catalogue_path().parents[1]


def rule(name: str, scope: Scope = Scope.SUBTREE, action: ListAction = BLOCK) -> Rule:
    return Rule(name, scope, action)


@pytest.mark.parametrize(
    ("name", "blocked"),
    [
        ("sub.example", True),  # listed
        ("www.sub.example", True),  # below a subtree rule
        ("exact.example", True),
        ("www.exact.example", False),  # an exact rule covers only itself
        ("wild.example", False),  # a wildcard covers only names below it
        ("a.wild.example", True),
        ("allowed.example", False),  # exceptions are not block rules
        ("other.example", False),
    ],
)
def test_a_rule_set_follows_each_scope(name: str, blocked: bool) -> None:
    rules = RuleSet.of(
        [
            rule("sub.example"),
            rule("exact.example", Scope.EXACT),
            rule("wild.example", Scope.WILDCARD),
            rule("allowed.example", action=ListAction.ALLOW),
        ]
    )
    assert rules.blocks(name) is blocked


def test_a_sample_is_fixed_by_its_seed_whatever_the_input_order() -> None:
    names = [f"n{i}.example" for i in range(1000)]
    first = sample(names, 50, 7, "src")
    assert first == sample(list(reversed(names)), 50, 7, "src")
    assert first != sample(names, 50, 8, "src") and len(set(first)) == 50
    assert sample(names[:10], 50, 7, "src") == sorted(names[:10])


def test_leave_one_out_measures_each_source_against_the_others() -> None:
    sources = [
        LoadedSource.of("a", "cat", [rule(n) for n in ("x.ex", "y.ex", "z.ex", "w.ex")]),
        LoadedSource.of("b", "cat", [rule("x.ex"), rule("www.y.ex")]),
        LoadedSource.of("allow-only", "cat", [rule("ok.ex", action=ListAction.ALLOW)]),
        LoadedSource.of("elsewhere", "other", [rule("z.ex")]),
    ]
    cov = leave_one_out("cat", sources, 10, 1)
    by_source = {s.source: (s.sampled, s.blocked, s.wider) for s in cov.sources}
    assert by_source == {"a": (4, 1, 1), "b": (2, 2, 2)}  # www.y is below a's y.ex
    assert cov.share == pytest.approx(3 / 6) and not cov.single_source
    single = leave_one_out("cat", sources[:1], 10, 1)
    assert single.single_source and single.share is None


def test_the_wider_figure_adds_the_profiles_other_categories_and_keywords() -> None:
    sources = [
        LoadedSource.of("a", "cat", [rule(n) for n in ("x.ex", "z.ex", "casino.ex", "w.ex")]),
        LoadedSource.of("b", "cat", [rule("x.ex")]),
        LoadedSource.of("elsewhere", "other", [rule("z.ex")]),
        LoadedSource.of("unblocked", "games", [rule("w.ex")]),
    ]

    def keyword(name: str) -> str | None:
        return "casino" if "casino" in name else None

    wider = profile_wider(sources, {"cat", "other"}, keyword)
    a = leave_one_out("cat", sources, 10, 1, wider).sources[0]
    assert (a.source, a.blocked, a.wider) == ("a", 1, 3)  # x; x, z (other), casino (keyword)
    assert not wider("a", "w.ex")  # games is not blocked by this profile


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def report(state: Path) -> CoverageReport:
    return measure(load_catalogue(), state, None, "under16", size=300, seed=19)


UT1_TARGETS = ["ut1-agressif", "ut1-dating", "ut1-drogue", "ut1-doh", "ut1-vpn", "ut1-gambling"]


@pytest.mark.parametrize("source", UT1_TARGETS)
def test_the_embedded_default_blocks_most_of_each_ut1_list(report, source: str) -> None:
    hits, sampled = report.profile_blocked[source]
    assert sampled >= 250 and hits / sampled >= 0.9


def _harmless(report: CoverageReport, name: str) -> dict:
    return {h.profile: h for h in report.harmless if h.set == name}


def test_top_sites_are_blocked_only_for_what_they_are(report) -> None:
    top = _harmless(report, "top-10000")
    for profile in ("under16", "isp-default"):
        assert top[profile].size == 10_000 and len(top[profile].unexpected) <= 20
    # School blocks games and piracy all day: those blocks are its policy, listed by rule.
    for b in top["school"].unexpected:
        assert b.category in {"games", "piracy", "vpn-proxy", "keyword"} and b.rule, b
    for h in top.values():
        assert all(b.rule and b.source for b in h.blocked)
        assert "fctupdate.fortinet.net" not in {b.name for b in h.blocked}


@pytest.mark.parametrize("name", ["ut1-child", "ut1-sexual-education"])
def test_keyword_rules_alone_match_no_child_or_sex_education_site(report, name: str) -> None:
    sets = _harmless(report, name)
    assert set(sets) == {"under16", "school", "isp-default"}
    for h in sets.values():
        assert h.size > 10 and h.keyword_hits == ()
        assert h.blocked == ()


def test_vietnamese_education_health_and_government_sites_are_not_blocked(report) -> None:
    for h in _harmless(report, "vn-education-health-gov").values():
        assert h.size >= 50 and h.blocked == () and h.keyword_hits == ()


def _between_markers(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    found = re.search(r"<!-- coverage:begin -->\n(.*?)\n<!-- coverage:end -->", text, re.S)
    assert found, f"{path} has no coverage table"
    return found.group(1)


@pytest.mark.parametrize("doc", ["README.md", "blocklists/README.md"])
def test_the_documented_figures_are_the_measured_ones(report, doc: str) -> None:
    assert _between_markers(ROOT / doc) == markdown(report)


def test_the_command_prints_json_and_a_table(state: Path) -> None:
    runner = CliRunner()
    args = ["coverage", "--state-dir", str(state), "--sample", "20", "--seed", "3"]
    done = runner.invoke(lists, [*args, "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["seed"] == 3 and data["profile"] == "under16"
    dating = next(c for c in data["categories"] if c["category"] == "dating")
    assert {s["source"] for s in dating["sources"]} == {"shadowwhisperer-dating", "ut1-dating"}
    assert all(s["sampled"] == 20 for s in dating["sources"])
    table = runner.invoke(lists, args)
    assert table.exit_code == 0 and "leave-one-source-out" in table.output
    assert "top-10000" in table.output and "ut1-sexual-education" in table.output


def test_a_bad_profile_name_is_one_clear_line(state: Path) -> None:
    done = CliRunner().invoke(lists, ["coverage", "--state-dir", str(state), "--profile", "nobody"])
    assert done.exit_code == 1
    assert "Error: --profile: unknown profile 'nobody'" in done.output


def test_the_json_report_is_plain_data(report) -> None:
    data = to_json(report)
    assert json.loads(json.dumps(data)) == data
    hacking = [c for c in data["categories"] if c["category"] == "hacking"]
    assert hacking == []  # no shipped profile blocks hacking: not measured
