"""Customising without forking, through the real `lachan`: a site's own profile changes
(policies.local_dir) and its own lists (lists.extra_sources, by file or URL, format detected)
sit beside the shipped profiles and catalogue, which stay as shipped."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stub_upstream import ROOT, lachan_command

LISTS = {  # one site list per detectable format, each naming its own blocked host
    "hosts": "# ours\n0.0.0.0 hosts-listed.example\n",
    "domains": "domains-listed.example\n",
    "adblock": "! ours\n||adblock-listed.example^\n",
    "rpz": "$TTL 300\n@ SOA localhost. root.localhost. 1 3600 600 86400 300\n"
    "rpz-listed.example CNAME .\n",
}
CATALOGUE = """categories:
  - id: adult
    name_vi: Nội dung người lớn
    name_en: Adult content
    default: true
    sources: []
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(lachan_command() + list(args), capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)  # fmt: skip


@pytest.fixture
def list_server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving tmp_path/www (the site's list host)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(www))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_one_local_file_changes_school_and_the_other_profiles_stay(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "school.yaml").write_text(
        "allow: [scratch.mit.edu]\ndeny: [tiktok.com, '*.tiktok.com']\n", encoding="utf-8"
    )
    config = tmp_path / "lachan.yaml"
    config.write_text("lists: {enabled: false}\npolicies: {local_dir: local}\n"
                      "clients: {default: school, networks: {'10.9.0.0/16': under16}}\n")  # fmt: skip
    assert run("check-config", "--files-only", str(config)).returncode == 0
    denied = run("explain", "--config", str(config), "www.tiktok.com")
    assert denied.returncode == 0, denied.stderr
    assert "profile:  school (" in denied.stdout
    assert "decision: block (reason deny" in denied.stdout
    kept = run("explain", "--config", str(config), "--client", "10.9.1.1", "www.tiktok.com")
    assert "profile:  under16 (" in kept.stdout and "decision: allow" in kept.stdout


def test_a_missing_local_dir_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "lachan.yaml"
    config.write_text("policies: {local_dir: nowhere}\n")
    result = run("check-config", "--files-only", str(config))
    assert result.returncode == 1
    assert (
        result.stderr == f"{config}: policies.local_dir: folder {tmp_path}/nowhere does not exist\n"
    )


def test_own_lists_by_file_and_url_block_with_their_format_detected(
    tmp_path: Path, list_server: str
) -> None:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    sources = []
    for fmt, text in LISTS.items():
        (tmp_path / f"{fmt}.txt").write_text(text, encoding="utf-8")
        sources.append(f"{{id: file-{fmt}, category: adult, file: {fmt}.txt}}")
        (tmp_path / "www" / f"{fmt}.txt").write_text(text.replace("listed", "served"))
        sources.append(f"{{id: url-{fmt}, category: adult, url: '{list_server}/{fmt}.txt'}}")
    config = tmp_path / "lachan.yaml"
    config.write_text(
        "lists: {catalogue: catalogue.yaml, state_dir: state, extra_sources: ["
        + ", ".join(sources) + "]}\n", encoding="utf-8",
    )  # fmt: skip
    assert run("check-config", "--files-only", str(config)).returncode == 0
    updated = run("lists", "update", "--config", str(config))
    assert updated.returncode == 0, updated.stdout + updated.stderr
    for fmt in LISTS:
        for how in ("listed", "served"):
            result = run("explain", "--config", str(config), f"{fmt}-{how}.example")
            assert "decision: block" in result.stdout and "category adult" in result.stdout, (
                fmt, how, result.stdout + result.stderr,
            )  # fmt: skip


def test_an_extra_source_in_an_unknown_category_is_named(tmp_path: Path) -> None:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "ours.txt").write_text("x.example\n")
    config = tmp_path / "lachan.yaml"
    config.write_text("lists: {catalogue: catalogue.yaml, extra_sources: "
                      "[{id: ours, category: adullt, file: ours.txt}]}\n")  # fmt: skip
    result = run("check-config", "--files-only", str(config))
    assert result.returncode == 1
    assert result.stderr == (f"{config}: lists.extra_sources[0].category: unknown category "
                             "'adullt' (known: adult)\n")  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(LISTS))
def test_lists_check_detects_each_format(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "list.txt"
    path.write_text(LISTS[fmt], encoding="utf-8")
    result = run("lists", "check", str(path))
    assert result.stdout.strip().endswith(f"format {fmt}: 1 entries, 0 rejected or skipped lines")
