"""Safe-search tables: every Google country domain and its loopholes, each engine's target."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from resolver.policy.safesearch import ENGINE_MODES, SafeSearch, engine_names, rewrite_table
from resolver.policy.safesearch_data import GOOGLE_SUFFIXES


def test_google_country_domains() -> None:
    assert len(GOOGLE_SUFFIXES) == 195 and len(set(GOOGLE_SUFFIXES)) == 195
    for suffix in ("com", "com.vn", "co.uk", "cat", "co.jp", "com.au", "de", "ad", "fr"):
        assert suffix in GOOGLE_SUFFIXES
    google = engine_names("google", "on")
    assert len(google) == 4 * 195  # apex, www., encrypted., ipv6. of each
    assert set(google.values()) == {"forcesafesearch.google.com"}
    for host in ("google.com.vn", "www.google.com.vn", "encrypted.google.com", "ipv6.google.de"):
        assert google[host] == "forcesafesearch.google.com"


@pytest.mark.parametrize(
    ("engine", "mode", "name", "target"),
    [
        ("youtube", "strict", "www.youtube.com", "restrict.youtube.com"),
        ("youtube", "moderate", "youtube.googleapis.com", "restrictmoderate.youtube.com"),
        ("bing", "on", "edgeservices.bing.com", "strict.bing.com"),
        ("duckduckgo", "on", "start.duckduckgo.com", "safe.duckduckgo.com"),
        ("yandex", "on", "www.xn--d1acpjx3f.xn--p1ai", "familysearch.yandex.ru"),
        ("ecosia", "on", "www.ecosia.org", "strict-safe-search.ecosia.org"),
        ("pixabay", "on", "pixabay.com", "safesearch.pixabay.com"),
        ("brave", "on", "search.brave.com", "forcesafe.search.brave.com"),
    ],
)
def test_engine_targets(engine, mode, name, target) -> None:
    assert engine_names(engine, mode)[name] == target


def test_off_and_no_self_rewrite() -> None:
    assert all(engine_names(engine, "off") == {} for engine in ENGINE_MODES)
    table = rewrite_table(SafeSearch({e: m[0] for e, m in ENGINE_MODES.items()}))
    assert all(name != target for name, (_e, target) in table.items())
    assert "forcesafesearch.google.com" not in table and "restrict.youtube.com" not in table


PUBLISHED = Path(__file__).parents[1] / "data" / "safesearch" / "google-supported-domains.txt"
# Google domains lachan rewrites that are not on the published snapshot, and why (see
# tests/data/safesearch/README.md): a test fails when either list changes without the other.
GOOGLE_EXTRA = {
    "com.ai": "on Google's list in 2023 copies",
    "ms": "on Google's list in 2023 copies",
    "vg": "on Google's list in 2023 copies",
    "co": "in AdGuard Home's safe-search rules",
    "com.nf": "in AdGuard Home's safe-search rules",
    "gp": "in AdGuard Home's safe-search rules",
    "tk": "in AdGuard Home's safe-search rules",
    "ac": "reported in issue #17 as a Google domain left unrewritten",
}


def test_googles_published_list_is_the_unmodified_copy() -> None:
    """The byte-for-byte copy the README attributes, not a list edited by hand."""
    digest = hashlib.sha256(PUBLISHED.read_bytes()).hexdigest()
    assert digest == "09114b33a189c468a65ad2a91fbd5bb83bd5e0daf5350d828b3831c77118a3f7"
    assert digest in (PUBLISHED.parent / "README.md").read_text()


def test_every_domain_on_googles_published_list_gets_safe_search() -> None:
    published = PUBLISHED.read_text().split()
    assert len(published) == 187 and all(d.startswith(".google.") for d in published)
    suffixes = {d.removeprefix(".google.") for d in published}
    assert {"com", "com.vn", "cat", "co.uk"} <= suffixes
    google = engine_names("google", "on")
    for suffix in sorted(suffixes):
        for host in (f"google.{suffix}", f"www.google.{suffix}"):
            assert google.get(host) == "forcesafesearch.google.com", host
    assert set(GOOGLE_SUFFIXES) - suffixes == set(GOOGLE_EXTRA)
