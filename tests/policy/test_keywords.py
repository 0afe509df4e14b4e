"""Keyword rules: label substrings, the TLD included, with allow-word exceptions."""

from __future__ import annotations

import pytest

from resolver.policy.keywords import KeywordMatcher

MATCHER = KeywordMatcher.build(
    ["porn", "sex", "casino", "cado", "nhacai", "baccarat"],
    ["essex", "sussex", "middlesex", "avocado"],
)

CASES = [
    ("pornhub.com", "porn"),
    ("free-casino.vn", "casino"),
    ("cado88.net", "cado"),
    ("www.nhacaiuytin.com", "nhacai"),
    ("live.baccarat.test", "baccarat"),
    ("my.sex", "sex"),  # the TLD is a label
    ("sexessex.com", "sex"),  # the first 'sex' is not inside 'essex'
    ("essex.ac.uk", None),
    ("www.sussex.ac.uk", None),
    ("middlesex.gov.uk", None),
    ("avocado.com", None),
    ("example.com", None),
    ("cas.ino.com", None),  # never across a dot
]


@pytest.mark.parametrize(("name", "rule"), CASES)
def test_match(name, rule) -> None:
    assert MATCHER.match(name) == rule


def test_without_allow_words_and_empty() -> None:
    plain = KeywordMatcher.build(["xxx"])
    assert plain.match("xxx.example") == "xxx" and plain.match("example.com") is None
    assert KeywordMatcher.build([]).match("porn.com") is None


def test_allow_word_equal_to_a_keyword_does_not_disable_it() -> None:
    assert KeywordMatcher.build(["sex"], ["sex"]).match("sex.com") == "sex"


TOKEN = KeywordMatcher.build(["^lode", "porn"], ["lodestar"])


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("lode88.vn", "^lode"),  # a label starts with it
        ("w88-lode.com", "^lode"),  # after a hyphen
        ("soi88lode.net", "^lode"),  # after a digit
        ("www.lode.vn", "^lode"),
        ("flodesk.com", None),  # inside a word
        ("faslodexsavings.com", None),  # a breast-cancer medicine
        ("lodestar.org", None),  # the allow word still shields it
        ("flodesk-porn.com", "porn"),
    ],
)
def test_a_token_keyword_matches_only_where_a_token_starts(name, rule) -> None:
    assert TOKEN.match(name) == rule


def test_a_substring_keyword_beside_its_token_form_keeps_matching_inside_words() -> None:
    assert KeywordMatcher.build(["^sex", "sex"]).match("freesex.com") == "sex"
    assert KeywordMatcher.build(["^sex"]).match("freesex.com") is None
