from __future__ import annotations

from pathlib import Path

import pytest

from resolver.errors import IndexError_
from resolver.lists.build import SourceInput, build_index
from resolver.lists.index import open_index
from resolver.lists.match import ListAction
from resolver.lists.rules import Rule, Scope

A = ListAction
S, E, W = Scope.SUBTREE, Scope.EXACT, Scope.WILDCARD
CATS = ["adult", "games", "phishing", "safesearch"]


def _index(tmp_path: Path, *sources: SourceInput):  # type: ignore[no-untyped-def]
    path = build_index(list(sources), CATS, tmp_path / "t.lidx", clock=lambda: 1000.0)
    return open_index(path)


@pytest.fixture
def index(tmp_path: Path):  # type: ignore[no-untyped-def]
    adult = SourceInput(
        "adult-list",
        "adult",
        [
            Rule("example.com", S, A.BLOCK),
            Rule("exact.test", E, A.BLOCK),
            Rule("wild.test", W, A.BLOCK),
            Rule("ok.example.com", S, A.ALLOW),
            Rule("bad.ok.example.com", S, A.BLOCK),
            Rule("same.test", S, A.BLOCK),
            Rule("same.test", S, A.ALLOW),
        ],
    )
    games = SourceInput(
        "games-list",
        "games",
        [
            Rule("play.example.com", S, A.BLOCK),
            Rule("x.ok.example.com", S, A.BLOCK),
            Rule("both.test", S, A.BLOCK),
        ],
    )
    phishing = SourceInput("phish-list", "phishing", [Rule("both.test", S, A.NODATA)])
    rewrite = SourceInput(
        "ss",
        "safesearch",
        [Rule("www.google.com.vn", E, A.REWRITE, (("CNAME", "forcesafesearch.google.com."),))],
    )
    return _index(tmp_path, adult, games, phishing, rewrite)


@pytest.mark.parametrize(
    ("name", "action", "rule", "cats"),
    [
        ("example.com", A.BLOCK, "example.com", {"adult"}),
        ("www.example.com", A.BLOCK, "example.com", {"adult"}),
        ("a.b.c.example.com", A.BLOCK, "example.com", {"adult"}),
        ("com", None, None, None),
        ("xexample.com", None, None, None),
        ("example.com.evil", None, None, None),
        ("exact.test", A.BLOCK, "exact.test", {"adult"}),
        ("www.exact.test", None, None, None),
        ("wild.test", None, None, None),
        ("a.wild.test", A.BLOCK, "*.wild.test", {"adult"}),
        ("ok.example.com", A.ALLOW, "ok.example.com", set()),
        ("www.ok.example.com", A.ALLOW, "ok.example.com", set()),
        ("bad.ok.example.com", A.BLOCK, "bad.ok.example.com", {"adult"}),
        ("same.test", A.ALLOW, "same.test", set()),
        # categories of enclosing blocks are folded into more specific ones ...
        ("play.example.com", A.BLOCK, "play.example.com", {"adult", "games"}),
        # ... but not across an exception
        ("x.ok.example.com", A.BLOCK, "x.ok.example.com", {"games"}),
        # same name in two sources: first source's action, categories add up
        ("both.test", A.BLOCK, "both.test", {"games", "phishing"}),
        ("www.google.com.vn", A.REWRITE, "www.google.com.vn", {"safesearch"}),
    ],
)
def test_lookup_semantics(index, name, action, rule, cats) -> None:  # type: ignore[no-untyped-def]
    match = index.lookup(name)
    if action is None:
        assert match is None
        assert index.lookup_shared(name) is None
        return
    assert (match.action, match.rule, set(match.categories)) == (action, rule, cats)
    assert match.mask == index.category_mask(cats)
    shared = index.lookup_shared(name)  # the serving path: same winner, rule left empty
    assert shared == match._replace(rule="")


def test_match_details_and_memo(index) -> None:  # type: ignore[no-untyped-def]
    match = index.lookup("www.google.com.vn")
    assert match.rewrite == (("CNAME", "forcesafesearch.google.com."),)
    assert match.source == "ss"
    shared = index.lookup_shared("www.google.com.vn")
    assert index.lookup_shared("www.google.com.vn") is shared  # memo
    allow = index.lookup_shared("ok.example.com")
    assert index.lookup_shared("www.ok.example.com") is allow  # one object per template
    assert index.shared.lookup("www.google.com.vn") is shared
    assert index.lookup("play.example.com").source == "games-list"
    assert index.category_mask(["adult", "phishing", "nope"]) == 0b101


def test_header(index) -> None:  # type: ignore[no-untyped-def]
    info = index.info
    assert info.built_at == 1000.0
    assert info.categories == tuple(CATS)
    assert info.sources["adult-list"]["entries"] == 7
    assert info.counts["keys"] == len(index) == 10
    chain = index.explain("www.bad.ok.example.com")
    assert [(rule, slot) for rule, slot, _ in chain] == [
        ("bad.ok.example.com", "sub"),
        ("ok.example.com", "sub"),
        ("example.com", "sub"),
    ]


def test_memo_is_bounded(tmp_path: Path) -> None:
    path = build_index(
        [SourceInput("s", "adult", [Rule("a.test", S, A.BLOCK)])], CATS, tmp_path / "i"
    )
    index = open_index(path, memo_size=4)
    for i in range(20):
        index.lookup_shared(f"n{i}.test")
    assert len(index._memo) <= 4 and len(index._older) <= 4
    assert index.lookup_shared("x.a.test") is not None
    assert open_index(path, memo_size=0).lookup_shared("x.a.test") is not None


def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x01
    elif how == "truncate":
        data = data[: len(data) - 100]
    elif how == "magic":
        data[:8] = b"NOTANIDX"
    elif how == "tiny":
        data = data[:10]
    elif how == "version":
        data[8] = 99
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("flip", "checksum mismatch"),
        ("truncate", "checksum mismatch"),
        ("magic", "bad magic"),
        ("tiny", "truncated index"),
        ("version", "index format 99"),
    ],
)
def test_corrupt_index_is_refused(tmp_path: Path, how: str, message: str) -> None:
    path = build_index(
        [SourceInput("s", "adult", [Rule("a.test", S, A.BLOCK)] * 3)], CATS, tmp_path / "i"
    )
    _corrupt(path, how)
    with pytest.raises(IndexError_, match=message):
        open_index(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="cannot map"):
        open_index(tmp_path / "absent")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(IndexError_):
        open_index(tmp_path / "empty")
