"""The embedded default: bundled lists compile once, then load from the state dir in ms."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from resolver.errors import ListError
from resolver.lists.catalogue import load_catalogue
from resolver.lists.index import open_index
from resolver.lists.match import ListAction
from resolver.lists.snapshot import (
    current_index,
    downloaded_path,
    ensure_index,
    read_text,
    source_file,
)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    ensure_index(load_catalogue(), state)
    return state


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("www.pornhub.com", "adult"),
        ("0310love.com", "adult"),  # hostsVN Vietnamese adult
        ("007win.com", "gambling"),  # hostsVN Vietnam-targeted gambling
        ("crownbet.com.au", "gambling"),
        ("000000.live", "phishing"),  # vn-badsite-filter RPZ (ChongLuaDao data)
        ("0088shop.com", "phishing"),  # hostsVN threat-VN
        ("evil.sites.google.com", None),
        ("sites.google.com", None),  # protected platform host
        ("www.google.com", None),
        ("vnexpress.net", None),
    ],
)
def test_default_blocks_real_names(state: Path, name: str, category: str | None) -> None:
    index = open_index(ensure_index(load_catalogue(), state))
    match = index.lookup(name)
    if category is None:
        assert match is None or not (match.categories & {"adult", "gambling", "phishing"})
    else:
        assert match is not None and category in match.categories


def test_second_start_reuses_the_index(state: Path) -> None:
    first = current_index(state)
    assert first is not None
    mtime = first.stat().st_mtime_ns
    again = ensure_index(load_catalogue(), state)
    assert again == first and again.stat().st_mtime_ns == mtime


def test_corrupt_cached_index_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a.example\n")
    (tmp_path / "c.yaml").write_text(
        "categories:\n  - {id: adult, name_vi: x, name_en: y, sources: "
        "[{id: s, format: domains, bundled: a.txt, licence: MIT}]}\n"
    )
    cat = load_catalogue(tmp_path / "c.yaml")
    path = ensure_index(cat, tmp_path / "state")
    path.write_bytes(path.read_bytes()[:-10])
    rebuilt = ensure_index(cat, tmp_path / "state")
    assert rebuilt == path
    assert open_index(rebuilt).lookup("www.a.example") is not None


def test_download_overrides_bundled_copy(tmp_path: Path, state: Path) -> None:
    cat = load_catalogue()
    src = cat.source("shadowwhisperer-shock")
    assert source_file(src, tmp_path) == src.bundled
    fetched = downloaded_path(tmp_path, src.id)
    fetched.parent.mkdir(parents=True)
    fetched.write_text("fresh-shock.example\n")
    assert source_file(src, tmp_path) == fetched


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("nordvpn.com", "vpn-proxy"),  # consumer VPN
        ("hola.org", "vpn-proxy"),
        ("consumervpn.trendmicro.com", "vpn-proxy"),  # below a vendor, listed deeper
        ("dns.google", "doh"),
        ("doh.opendns.com", "doh"),
        ("dns.quad9.net", "doh"),
    ],
)
def test_bypass_tools_are_split_into_vpn_proxy_and_doh(
    state: Path, name: str, category: str
) -> None:
    match = open_index(ensure_index(load_catalogue(), state)).lookup(name)
    assert match is not None and match.action is ListAction.BLOCK
    assert category in match.categories


@pytest.mark.parametrize(
    "name",
    [
        "fctupdate.fortinet.net",
        "zscalertwo.net",
        "gateway.zscalertwo.net",
        "mus.cisco.com",
        "opendns.com",
        "block.opendns.com",
        "quad9.net",
        "sslip.io",
        "10-0-0-1.sslip.io",
    ],
)
def test_security_vendor_services_are_not_bypass_tools(state: Path, name: str) -> None:
    match = open_index(ensure_index(load_catalogue(), state)).lookup(name)
    assert match is not None, "each is named by a bypass list; the vendor allow list lifts it"
    assert match.action is ListAction.ALLOW and match.source == "lachan-vendor-allow"


def test_a_gzipped_list_compiles_like_the_plain_one(tmp_path: Path) -> None:
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(b"a.example\nb.example\n"))
    (tmp_path / "c.yaml").write_text(
        "categories:\n  - {id: adult, name_vi: x, name_en: y, sources: "
        "[{id: s, format: domains, bundled: a.txt.gz, licence: MIT}]}\n"
    )
    index = open_index(ensure_index(load_catalogue(tmp_path / "c.yaml"), tmp_path / "state"))
    assert index.lookup("www.b.example") is not None and len(index) == 2


def test_a_corrupt_gzipped_list_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "a.txt.gz"
    bad.write_bytes(gzip.compress(b"a.example\n")[:-6])
    with pytest.raises(ListError, match=r"a\.txt\.gz: not a readable gzip file"):
        read_text(bad)
