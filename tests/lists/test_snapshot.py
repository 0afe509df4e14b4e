"""The embedded default: bundled lists compile once, then load from the state dir in ms."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest

from resolver.errors import ListError
from resolver.lists import snapshot
from resolver.lists.catalogue import load_catalogue
from resolver.lists.index import open_index
from resolver.lists.match import ListAction
from resolver.lists.snapshot import (
    current_index,
    downloaded_path,
    ensure_index,
    input_digests,
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


def _one_source(folder: Path, names: str) -> Path:
    (folder / "a.txt").write_text(names)
    (folder / "c.yaml").write_text(
        "categories:\n  - {id: adult, name_vi: x, name_en: y, sources: "
        "[{id: s, format: domains, bundled: a.txt, licence: MIT}]}\n"
    )
    return folder / "a.txt"


def later() -> float:
    return time.time() + 60  # every input file already counts as settled (not racy)


def test_an_unchanged_input_is_not_read_again_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_source(tmp_path, "a.example\n")
    cat, state = load_catalogue(tmp_path / "c.yaml"), tmp_path / "state"
    first = input_digests(cat, state, clock=later)
    hashed: list[Path] = []
    monkeypatch.setattr(snapshot, "_digest", lambda p: hashed.append(p) or "x")
    assert input_digests(cat, state, clock=later) == first and not hashed


def test_an_input_rewritten_in_place_with_its_old_size_and_mtime_is_read_again(
    tmp_path: Path,
) -> None:
    source = _one_source(tmp_path, "a.example\n")
    cat, state = load_catalogue(tmp_path / "c.yaml"), tmp_path / "state"
    before = source.stat()
    old = ensure_index(cat, state, clock=later)
    source.write_text("b.example\n")  # same size, same inode
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old mtime
    time.sleep(0.01)  # past the filesystem's timestamp tick: the ctime moves on
    new = ensure_index(cat, state, clock=later)
    assert new != old
    assert open_index(new).lookup("b.example") and not open_index(new).lookup("a.example")


def _kept(state: Path) -> list[str]:
    memo = state / snapshot.INPUTS_MEMO
    return list(json.loads(memo.read_text())) if memo.exists() else []


def test_a_digest_taken_just_after_a_change_is_not_kept(tmp_path: Path) -> None:
    _one_source(tmp_path, "a.example\n")
    cat, state = load_catalogue(tmp_path / "c.yaml"), tmp_path / "state"
    input_digests(cat, state)  # the file was written a moment ago: racy
    assert _kept(state) == []
    input_digests(cat, state, clock=later)
    assert _kept(state) == [str(tmp_path / "a.txt")]


def test_an_unreadable_memo_only_costs_a_rehash(tmp_path: Path) -> None:
    _one_source(tmp_path, "a.example\n")
    cat, state = load_catalogue(tmp_path / "c.yaml"), tmp_path / "state"
    first = input_digests(cat, state, clock=later)
    (state / snapshot.INPUTS_MEMO).write_text("[not json")
    assert input_digests(cat, state, clock=later) == first
