"""audit report binds keys to sites, counts a ledger once, keeps bypass attempts apart, and
never shows an unverified ledger as valid; audit verify catches a deleted tail."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from audit_helpers import STATE, T0, FakeClock, fill
from click.testing import CliRunner

from resolver.audit.accumulator import PeriodAccumulator
from resolver.audit.keys import load_private_key, write_keypair
from resolver.audit.ledger import Ledger
from resolver.commands.audit import audit

DAY = ["--from", "2025-11-28", "--to", "2025-11-29"]


def _keys(tmp_path: Path, name: str) -> Path:
    return write_keypair(tmp_path / name)[1]


def _ledger(path: Path, pub: Path, site: str, hours: int = 3) -> Path:
    key = load_private_key(pub.with_name("audit.key"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with Ledger.open(path, key, site=site, site_kind="school", instance="gw1") as led:
        fill(led, FakeClock(T0), hours)
    return path


def _all_rows(text: str) -> list[dict[str, str]]:
    return [r for r in csv.DictReader(io.StringIO(text)) if r["category"] == "(all)"]


def test_a_ledger_labelled_site_a_but_signed_with_site_bs_key_is_rejected(
    tmp_path: Path,
) -> None:
    a_pub, b_pub = _keys(tmp_path, "a"), _keys(tmp_path, "b")
    forged = _ledger(tmp_path / "l" / "forged.jsonl", b_pub, "site-a")  # B's key, A's label
    _ledger(tmp_path / "l" / "b.jsonl", b_pub, "site-b")
    out = CliRunner().invoke(
        audit,
        ["report", str(tmp_path / "l"), *DAY, "--public-key", f"site-a={a_pub}",
         "--public-key", f"site-b={b_pub}"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert [r["site"] for r in _all_rows(out.stdout)] == ["site-b"] * 3  # site-a counts nothing
    assert f"warning: {forged}:1: signed by key" in out.stderr


def test_a_bare_key_is_refused_when_the_ledgers_name_several_sites(tmp_path: Path) -> None:
    b_pub = _keys(tmp_path, "b")
    _ledger(tmp_path / "l" / "a.jsonl", b_pub, "site-a")
    _ledger(tmp_path / "l" / "b.jsonl", b_pub, "site-b")
    out = CliRunner().invoke(
        audit, ["report", str(tmp_path / "l"), *DAY, "--public-key", str(b_pub)]
    )
    assert out.exit_code == 1
    assert "the ledgers name 2 sites; bind each key to its site" in out.stderr


def test_keys_from_the_coverage_registry_bind_sites(tmp_path: Path) -> None:
    a_pub, b_pub = _keys(tmp_path, "a"), _keys(tmp_path, "b")
    _ledger(tmp_path / "l" / "a.jsonl", b_pub, "site-a")  # signed with the wrong key
    registry = tmp_path / "sites.yaml"
    registry.write_text(
        f"sites:\n  - {{id: site-a, name: A, kind: school, commune: X, public_key: {a_pub}}}\n"
    )
    out = CliRunner().invoke(
        audit, ["report", str(tmp_path / "l"), *DAY, "--registry", str(registry)]
    )
    assert out.exit_code == 0, out.output
    assert _all_rows(out.stdout) == [] and "signed by key" in out.stderr


def test_two_copies_of_one_ledger_count_once(tmp_path: Path) -> None:
    pub = _keys(tmp_path, "a")
    first = _ledger(tmp_path / "l" / "a.jsonl", pub, "site-a")
    shutil.copy(first, tmp_path / "l" / "a-copy.jsonl")
    html_path = tmp_path / "r.html"
    args = ["report", str(tmp_path / "l"), *DAY, "--public-key", f"site-a={pub}"]
    out = CliRunner().invoke(audit, args)
    assert [(r["blocked"], r["queries"]) for r in _all_rows(out.stdout)] == [
        ("3", "103"), ("4", "105"), ("5", "107"),
    ]  # fmt: skip
    CliRunner().invoke(audit, [*args, "--format", "html", "--out", str(html_path)])
    assert "3 records counted once" in html_path.read_text()


def test_without_the_sites_key_a_ledger_is_unverified_never_green(tmp_path: Path) -> None:
    pub = _keys(tmp_path, "a")
    _ledger(tmp_path / "l" / "a.jsonl", pub, "site-a")
    html_path = tmp_path / "r.html"
    out = CliRunner().invoke(
        audit, ["report", str(tmp_path / "l"), *DAY, "--format", "html", "--out", str(html_path)]
    )
    assert out.exit_code == 0
    html = html_path.read_text()
    assert "unverified: no key for this site" in html
    assert 'class="ok"' not in html and "chain valid" not in html
    assert html.index("Theo điểm") < html.index("Per site")  # Vietnamese first
    assert '<html lang="vi">' in html


def test_bypass_attempts_are_reported_apart_from_content_blocks(tmp_path: Path) -> None:
    pub = _keys(tmp_path, "a")
    path = tmp_path / "l" / "a.jsonl"
    path.parent.mkdir()
    key = load_private_key(pub.with_name("audit.key"))
    clock = FakeClock(T0)
    with Ledger.open(path, key, site="site-a", site_kind="school", instance="gw1") as led:
        acc = PeriodAccumulator(clock=clock, not_before=led.last_period_end)
        acc.add("allowed", "none", "school", 100)
        acc.add("blocked", "adult", "school", 2)
        acc.add("blocked", "bypass", "school", 5)  # DoH canary, relays: attempts, not content
        clock.now = acc.period_end
        counts = acc.roll()
        assert counts is not None
        led.append(counts, STATE)
    args = ["report", str(path.parent), *DAY, "--public-key", f"site-a={pub}"]
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(audit, args).stdout)))
    assert [(r["category"], r["blocked"], r["bypass_attempts"]) for r in rows] == [
        ("(all)", "2", "5"), ("adult", "2", ""),
    ]  # fmt: skip
    html_path = tmp_path / "r.html"
    CliRunner().invoke(audit, [*args, "--format", "html", "--out", str(html_path)])
    html = html_path.read_text()
    assert "<b>2</b>bị chặn (nội dung) / blocked (content)" in html
    assert "<b>5</b>vượt lọc / bypass attempts" in html


def test_verify_with_the_last_known_sequence_catches_a_deleted_tail(tmp_path: Path) -> None:
    pub = _keys(tmp_path, "a")
    path = _ledger(tmp_path / "a.jsonl", pub, "site-a", hours=5)
    ok = CliRunner().invoke(
        audit, ["verify", str(path), "--public-key", str(pub), "--expect-seq", "4"]
    )
    assert ok.exit_code == 0, ok.output
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))  # the last two records deleted: still a valid chain
    plain = CliRunner().invoke(audit, ["verify", str(path), "--public-key", str(pub)])
    assert plain.exit_code == 0  # nothing inside the file can show it
    cut = CliRunner().invoke(
        audit, ["verify", str(path), "--public-key", str(pub), "--expect-seq", "4"]
    )
    assert cut.exit_code == 1
    assert f"{path}:4: ends at sequence 2 but sequence 4 was seen before" in cut.stderr
