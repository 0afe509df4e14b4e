"""The ``lachan lists`` commands on a small catalogue in a temporary directory."""

from __future__ import annotations

import gzip
from pathlib import Path

from click.testing import CliRunner
from conftest import DATA

from resolver.commands.lists import lists

CATALOGUE = """
version: 1
protected: protected.txt
categories:
  - id: adult
    name_vi: Người lớn
    name_en: Adult
    description: test
    default: true
    sources:
      - id: sw-adult
        format: domains
        bundled: adult.txt
        licence: Unlicense
  - id: phishing
    name_vi: Lừa đảo
    name_en: Phishing
    guarded: true
    sources:
      - id: vn-rpz
        format: rpz
        bundled: vn.rpz
        licence: CC0-1.0
        refresh: 12h
      - id: cld
        format: domains
        bundled: cld.txt
        licence: CC0-1.0
"""


def _setup(tmp_path: Path) -> list[str]:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "protected.txt").write_text("sites.google.com\n")
    (tmp_path / "adult.txt").write_bytes((DATA / "shadowwhisperer-adult.txt").read_bytes())
    (tmp_path / "vn.rpz").write_bytes((DATA / "vn-badsite-filter.rpz").read_bytes())
    (tmp_path / "cld.txt").write_text("sites.google.com\nevil.sites.google.com\n")
    return ["--catalogue", str(tmp_path / "catalogue.yaml"), "--state-dir", str(tmp_path / "state")]


def test_compile_lookup_stats(tmp_path: Path) -> None:
    opts = _setup(tmp_path)
    runner = CliRunner()
    out = runner.invoke(lists, ["compile", *opts])
    assert out.exit_code == 0, out.output
    assert "names" in out.output and "B/name" in out.output
    hit = runner.invoke(lists, ["lookup", "WWW.00001.SBS.", *opts])
    assert hit.exit_code == 0
    assert "WINS 00001.sbs" in hit.output and "adult" in hit.output and "sw-adult" in hit.output
    miss = runner.invoke(lists, ["lookup", "sites.google.com", *opts])
    assert "sites.google.com: not listed" in miss.output
    deep = runner.invoke(lists, ["lookup", "evil.sites.google.com", *opts])
    assert "phishing" in deep.output
    stats = runner.invoke(lists, ["stats", *opts])
    assert stats.exit_code == 0
    assert "sw-adult" in stats.output and "50" in stats.output
    assert "cld" in stats.output


def test_check_prints_line_numbers(tmp_path: Path) -> None:
    out = CliRunner().invoke(lists, ["check", str(DATA / "lachan-sample.rpz")])
    assert out.exit_code == 0
    assert "lachan-sample.rpz:19: trigger type rpz-ip not supported" in out.output
    assert "format rpz: 12 entries, 6 rejected or skipped lines" in out.output
    forced = CliRunner().invoke(
        lists, ["check", str(DATA / "lachan-sample.domains"), "--format", "domains"]
    )
    assert ":6: IP address '1.2.3.4' is not a domain name" in forced.output


def test_bad_catalogue_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "catalogue.yaml"
    bad.write_text("categories:\n  - id: Adult\n")
    out = CliRunner().invoke(
        lists, ["stats", "--catalogue", str(bad), "--state-dir", str(tmp_path)]
    )
    assert out.exit_code == 1
    assert "categories[0].id: 'Adult' is not a lowercase id" in out.output
    assert "Traceback" not in out.output


def test_a_state_dir_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    opts = _setup(tmp_path)
    (tmp_path / "file").write_text("x")
    opts[-1] = str(tmp_path / "file" / "state")  # under a file: not even root can make it
    for command in ("compile", "stats"):
        out = CliRunner().invoke(lists, [command, *opts])
        assert out.exit_code == 1 and isinstance(out.exception, SystemExit)  # not a crash
        assert out.output == (
            f"Error: lists.state_dir: cannot create {tmp_path / 'file' / 'state' / 'index'}: "
            "Not a directory\n"
        ), out.output


NEVER_BLOCK_CATALOGUE = """
categories:
  - id: drugs
    name_vi: Ma tuý
    name_en: Drugs
    sources: [{id: drug-list, format: domains, bundled: drugs.txt, licence: MIT}]
  - id: health
    never_block: true
    name_vi: Sức khoẻ
    name_en: Health
    sources: [{id: health-list, format: domains, bundled: health.txt, licence: CC0-1.0}]
"""


def test_lookup_shows_a_never_block_conflict(tmp_path: Path) -> None:
    (tmp_path / "catalogue.yaml").write_text(NEVER_BLOCK_CATALOGUE, encoding="utf-8")
    (tmp_path / "drugs.txt").write_text("clinic.example\nshop.example\n")
    (tmp_path / "health.txt").write_text("clinic.example\n")
    opts = ["--catalogue", str(tmp_path / "catalogue.yaml"), "--state-dir", str(tmp_path / "s")]
    both = CliRunner().invoke(lists, ["lookup", "clinic.example", *opts])
    assert both.exit_code == 0, both.output
    assert "drugs,health" in both.output
    assert "never-block: health: no profile blocks it by keyword or by drugs" in both.output
    only = CliRunner().invoke(lists, ["lookup", "shop.example", *opts])
    assert "drugs" in only.output and "never-block" not in only.output


def test_check_reads_a_gzipped_list(tmp_path: Path) -> None:
    path = tmp_path / "list.txt.gz"
    path.write_bytes(gzip.compress(b"a.example\nnot a name\nb.example\n"))
    out = CliRunner().invoke(lists, ["check", str(path), "--format", "domains"])
    assert out.exit_code == 0, out.output
    assert "list.txt.gz:2:" in out.output and "2 entries, 1 rejected" in out.output
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(b"not gzip at all")
    out = CliRunner().invoke(lists, ["check", str(bad)])
    assert out.exit_code == 1 and "bad.txt.gz: not a readable gzip file" in out.output
