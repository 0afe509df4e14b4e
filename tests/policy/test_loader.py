"""Profile files: the shipped ones load, and every mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver.errors import ConfigError
from resolver.policy.decision import AnswerMode
from resolver.policy.loader import load_profiles, normalise_name

BAD = """\
name: school
block: [adult, porn]
allow: ["ok.example", "bad..name", "*.zoom.us", "a*.b.com"]
safe_search: {google: on, youtube: loud, altavista: on}
schedules:
  - categories: [games]
    days: [Mon, Funday]
    from: 21:30
    to: 06:00
  - {categories: [games], days: [Sun], from: "25:00", to: "06:00", every: week}
timezone: Mars/Olympus
keywords: {block: [casino, "x"], allow: [essex]}
anti_bypass: {firefox_canary: maybe, teleport: true}
block_answer: {mode: blockpage, ttl: -5, address_v4: "::1"}
monitor_only: "yes"
colour: blue
"""

EXPECTED = [
    "policies/school.yaml: colour: unknown key",
    "policies/school.yaml: block[1]: unknown category 'porn'",
    "policies/school.yaml: allow[1]: invalid domain name 'bad..name'",
    "policies/school.yaml: allow[3]: invalid domain name 'a*.b.com'",
    "policies/school.yaml: safe_search.youtube: mode must be one of strict, moderate, off",
    "policies/school.yaml: safe_search.altavista: unknown engine",
    "policies/school.yaml: schedules[0].days[1]: unknown weekday 'Funday'",
    "policies/school.yaml: schedules[0].from: write times in quotes",
    "policies/school.yaml: schedules[1].every: unknown key",
    "policies/school.yaml: schedules[1].from: expected HH:MM, got '25:00'",
    "policies/school.yaml: timezone: unknown time zone 'Mars/Olympus'",
    "policies/school.yaml: keywords.block[1]: keyword must be 2-63 letters",
    "policies/school.yaml: anti_bypass.teleport: unknown switch",
    "policies/school.yaml: anti_bypass.firefox_canary: expected bool, got str",
    "policies/school.yaml: block_answer.ttl: expected seconds from 0 to 86400, got -5",
    "policies/school.yaml: block_answer.address_v4: expected an IPv4 address, got '::1'",
    "policies/school.yaml: monitor_only: expected bool, got str",
]


def test_shipped_profiles_load(profiles) -> None:
    assert set(profiles) == {"under16", "school", "isp-default"}
    under16, school, isp = profiles["under16"], profiles["school"], profiles["isp-default"]
    assert {"adult", "gambling", "drugs", "violence", "dating", "scam", "malware", "phishing",
            "vpn-proxy", "doh"} <= under16.block  # fmt: skip
    assert under16.safe_search.modes["youtube"] == "strict"
    assert school.safe_search.modes["youtube"] == "moderate"
    assert "classroom.google.com" in school.allow.exact and "zoom.us" in school.allow.wildcard
    assert isp.censored == {"adult"} and not isp.safe_search.enabled("google")
    assert isp.answer.mode is AnswerMode.NXDOMAIN and str(isp.timezone) == "Asia/Ho_Chi_Minh"


def test_every_problem_is_reported_once_per_line(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "school.yaml").write_text(BAD, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path / "policies")
    problems = caught.value.problems
    for expected in EXPECTED:
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == len(EXPECTED), problems
    assert all("\n" not in p for p in problems)


def test_directory_errors_are_collected_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("block: [nope]\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("name: a\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text("block: [adult\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)
    text = str(caught.value)
    assert f"{tmp_path.name}/a.yaml: block[0]: unknown category 'nope'" in text
    assert f"{tmp_path.name}/c.yaml: line 2: invalid YAML" in text


def test_the_old_bypass_category_names_its_replacements(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text("block: [adult, vpn-proxy-doh]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path.name}/old.yaml: block[1]: category 'vpn-proxy-doh' was split into "
        "vpn-proxy (VPN and proxy services) and doh: name those instead"
    )


def test_duplicate_profile_names(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("block: [adult]\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("name: a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="b.yaml: name: profile 'a' is defined twice"):
        load_profiles(tmp_path)


def test_empty_directory_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no \\*.yaml profiles"):
        load_profiles(tmp_path)
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")  # a dangling link
    with pytest.raises(ConfigError, match=f"{tmp_path.name}/gone.yaml: cannot read"):
        load_profiles(tmp_path)


def test_a_profile_saved_in_a_windows_code_page_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "school.yaml").write_bytes("name: school\n# Thuê\n".encode("cp1258"))
    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)
    (line,) = caught.value.problems
    assert line.endswith("school.yaml: line 2: not UTF-8 text (save the file as UTF-8)"), line


@pytest.mark.parametrize(
    ("text", "wildcard", "expected"),
    [
        ("Example.COM.", False, "example.com"),
        ("*.Zoom.us", True, "*.zoom.us"),
        ("bücher.de", False, "xn--bcher-kva.de"),
        ("straße.de", False, "xn--strae-oqa.de"),  # UTS 46, as lists and browsers
        ("*.Straße.de", True, "*.xn--strae-oqa.de"),
        ("_dns.resolver.arpa", False, "_dns.resolver.arpa"),
    ],
)
def test_normalise_name(text, wildcard, expected) -> None:
    assert normalise_name(text, wildcard) == expected


@pytest.mark.parametrize("text", ["*.zoom.us", "-a.com", "a" * 64 + ".com", "", "a b.com"])
def test_normalise_name_rejects(text) -> None:
    with pytest.raises(ValueError):
        normalise_name(text)


def test_site_timezone_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("block: [adult]\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("timezone: Asia/Bangkok\n", encoding="utf-8")
    loaded = load_profiles(tmp_path, default_timezone="Europe/Paris")
    assert str(loaded["a"].timezone) == "Europe/Paris"
    assert str(loaded["b"].timezone) == "Asia/Bangkok"


def test_a_misspelt_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("blokc: [adult]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profiles(tmp_path)
    (line,) = caught.value.problems
    assert line.startswith(
        f"{tmp_path.name}/p.yaml: blokc: unknown key (did you mean block? known: allow,"
    )
