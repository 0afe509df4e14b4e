"""``lachan explain``: the profile and why, the decision, the rule and the answer, in words."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from policy_helpers import HCM, POLICIES, DictLookup, listed

from resolver.commands.policy import explain
from resolver.policy.explain import explain as explain_lines
from resolver.policy.explain import parse_qtype


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(explain, ["--policies", str(POLICIES), *args])
    return result.exit_code, result.output


def test_safe_search_rewrite() -> None:
    code, out = run("WWW.Google.com.vn.", "--type", "HTTPS", "--at", "2026-12-05 12:00")
    assert code == 0, out
    assert "query:    www.google.com.vn HTTPS at 2026-12-05 12:00 +07" in out
    assert "decision: rewrite (safe search, engine google)" in out
    assert "CNAME www.google.com.vn -> forcesafesearch.google.com" in out
    assert "ede:      4 Forged Answer" in out


def test_keyword_block_and_profile_reason() -> None:
    code, out = run("casino.example", "--client", "10.0.0.5")
    assert code == 0, out
    assert "profile:  under16 (client 10.0.0.5 matches no network or listener" in out
    assert "decision: block (reason keyword" in out and "rule:     casino from " in out
    assert "answer:   NXDOMAIN with the SOA in authority, TTL 300" in out


def test_config_clients_choose_the_profile(tmp_path: Path) -> None:
    config = tmp_path / "lachan.yaml"
    config.write_text(
        "clients:\n  default: under16\n  networks:\n    10.1.0.0/16: school\n", encoding="utf-8"
    )
    code, out = run("olm.vn", "--config", str(config), "--client", "10.1.2.3")
    assert code == 0, out
    assert "profile:  school (client 10.1.2.3 is in 10.1.0.0/16)" in out
    assert "decision: allow" in out


def test_errors_are_one_line() -> None:
    code, out = run("x.test", "--profile", "kids")
    assert code != 0 and "unknown profile 'kids'" in out
    code, out = run("x.test", "--type", "BOGUS")
    assert code != 0 and "unknown query type 'BOGUS'" in out
    code, out = run("x.test", "--at", "tomorrow")
    assert code != 0 and "cannot read time 'tomorrow'" in out


@pytest.mark.parametrize(
    ("text", "qtype"), [("aaaa", 28), ("HTTPS", 65), ("TYPE64", 64), ("99", 99)]
)
def test_parse_qtype(text, qtype) -> None:
    assert parse_qtype(text) == qtype


def test_a_bad_client_address_is_one_line_and_exit_2() -> None:
    code, out = run("example.com", "--client", "999.1.1.1")
    assert (code, out) == (2, "lachan explain: --client: not a valid address: '999.1.1.1'\n")


def test_a_missing_policies_folder_is_blamed_on_the_flag(tmp_path: Path) -> None:
    missing = tmp_path / "policies"
    result = CliRunner().invoke(explain, ["example.com", "--policies", str(missing)])
    assert (result.exit_code, result.output) == (
        2, f"lachan explain: --policies: folder {missing} does not exist\n"
    )  # fmt: skip


def test_an_invalid_name_is_said_invalid_not_allowed() -> None:
    code, out = run("bad name!")
    assert code == 2 and "allow" not in out
    assert out == (
        "lachan explain: NAME: invalid domain name 'bad name!' "
        "(letters, digits, '-' and '_' between dots)\n"
    )


def test_explain_shows_a_never_block_decision_and_its_conflicts(profiles) -> None:
    lookup = DictLookup(
        {
            "clinic.test": listed("health", "drugs", rule="clinic.test"),
            "hijacked.test": listed("health", "malware", rule="hijacked.test"),
        }
    )
    when = datetime(2026, 12, 5, 12, 0, tzinfo=HCM)
    out = explain_lines(profiles["under16"], "test", "clinic.test", 1, when, lookup)
    assert "decision: allow (a never-block list names it, see below)" in out
    assert (
        "never:    listed in never-block health: keyword rules do not apply; "
        "overrides drugs (also listed, blocked by this profile)"
    ) in out
    out = explain_lines(profiles["under16"], "test", "hijacked.test", 1, when, lookup)
    assert any(
        line.startswith("decision: block (reason category, category malware") for line in out
    )
    assert any("security category malware still blocks" in line for line in out)
