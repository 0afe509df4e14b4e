"""The shipped catalogue and bundled lists: valid, permissive, and blocking real names."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver.errors import ListError
from resolver.lists.catalogue import default_catalogue_path, load_catalogue
from resolver.policy.profile import CATEGORIES, NEVER_BLOCK

REQUIRED = {
    "adult",
    "gambling",
    "drugs",
    "violence",
    "malware",
    "phishing",
    "scam",
    "games",
    "social",
    "dating",
    "vpn-proxy",
    "doh",
    "piracy",
    "shorteners",
}
PERMISSIVE = {"Unlicense", "MIT", "CC0-1.0"}
SHARE_ALIKE = {"CC-BY-SA-4.0"}  # UT1: bundled as separate files under their own licence


def test_shipped_catalogue() -> None:
    cat = load_catalogue()
    assert REQUIRED <= set(cat.category_ids)
    assert {"adult", "gambling", "malware", "phishing", "scam"} <= cat.default_categories
    for c in cat.categories:
        assert c.name_vi and c.name_en and c.description and c.sources
    root = default_catalogue_path().parent
    bundled_dir = root / "bundled"
    attribution = (bundled_dir / "ATTRIBUTION.md").read_text()
    total = 0
    for src in cat.sources:
        assert src.url is None or src.url.startswith("https://raw.githubusercontent.com/")
        if src.bundled is not None:
            assert src.bundled.parent in (bundled_dir, root, root / "harmless")
            assert src.bundled.exists()
            assert src.licence in PERMISSIVE | SHARE_ALIKE, src.id  # never GPL
            assert src.bundled.name in attribution
            total += src.bundled.stat().st_size
    assert total < 15_000_000
    assert "sites.google.com" in cat.protected
    vn = [s.id for s in cat.sources if s.bundled and ("vn" in s.id or "chongluadao" in s.id)]
    assert len(vn) >= 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("categories: 3", "expected a mapping with a 'categories' list"),
        ("categories:\n  - id: a\n", "category a: missing key 'name_vi'"),
        (
            "categories:\n  - {id: a, name_vi: x, name_en: y, sources: [{id: s, format: csv}]}",
            "source s: format 'csv' is not one of",
        ),
        (
            "categories:\n  - {id: a, name_vi: x, name_en: y, sources: [{id: s, format: hosts}]}",
            "source s: needs a 'url', a 'bundled' file, or both",
        ),
        (
            "categories:\n  - {id: a, name_vi: x, name_en: y, sources: [{id: s, format: hosts, "
            "url: 'https://x', licence: MIT, refresh: soon}]}",
            "refresh 'soon' is not like",
        ),
        (
            "categories:\n  - {id: a, name_vi: x, name_en: y}\n  - {id: a, name_vi: x, name_en: y}",
            "duplicate category id 'a'",
        ),
        ("categories: [\n", "cannot read catalogue: line 2: not valid YAML: expected the node"),
    ],
)
def test_catalogue_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text(text)
    with pytest.raises(ListError) as info:
        load_catalogue(path)
    assert str(path) in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)  # one line: an operator's file, read at every start


def test_a_catalogue_saved_in_a_windows_code_page_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_bytes("# Thuê\ncategories: []\n".encode("cp1258"))
    with pytest.raises(ListError) as info:
        load_catalogue(path)
    assert str(info.value) == (
        f"{path}: cannot read catalogue: line 1: not UTF-8 text (save the file as UTF-8)"
    )


def test_never_block_categories_agree_with_the_policy_and_no_profile_can_block_them() -> None:
    cat = load_catalogue()
    assert cat.never_block == NEVER_BLOCK == {"education", "health", "child"}
    assert NEVER_BLOCK.isdisjoint(CATEGORIES)
    assert CATEGORIES <= set(cat.category_ids)
    for cid in NEVER_BLOCK:
        assert not next(c for c in cat.categories if c.id == cid).default
