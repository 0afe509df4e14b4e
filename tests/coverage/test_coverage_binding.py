"""coverage binds ledgers to the registry's key, counts a ledger once, and with the last known
sequence number catches a deleted tail."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from click.testing import CliRunner
from coverage_helpers import HOUR, T0, site_key, write_ledger

from resolver.audit.accumulator import PeriodCounts
from resolver.audit.keys import load_private_key
from resolver.audit.ledger import FilterState, Ledger
from resolver.commands.coverage import coverage

NOW = "2025-11-28T03:30:00Z"


def _setup(tmp_path: Path, signer: str = "s") -> list[str]:
    site_key(tmp_path, "s")
    other = site_key(tmp_path, "other")
    keys = tmp_path / "keys" / "s" if signer == "s" else other
    write_ledger(tmp_path / "l" / "s.jsonl", keys, "s", "school", "gw1", range(3))
    reg = tmp_path / "sites.yaml"
    reg.write_text("sites:\n  - {id: s, kind: school, public_key: keys/s/audit.pub}\n")
    return ["--registry", str(reg), "--ledgers", str(tmp_path / "l"), "--now", NOW,
            "--format", "csv"]  # fmt: skip


def _row(output: str) -> dict[str, str]:
    (row,) = csv.DictReader(io.StringIO(output))
    return row


def test_records_labelled_with_the_site_but_signed_by_another_key_are_flagged(
    tmp_path: Path,
) -> None:
    out = CliRunner().invoke(coverage, _setup(tmp_path, signer="other"))
    assert out.exit_code == 0, out.output
    row = _row(out.output)
    assert row["covered"] == "no" and row["signature"].startswith("BROKEN s.jsonl:1: signed by key")


def test_two_copies_of_one_ledger_count_once(tmp_path: Path) -> None:
    args = _setup(tmp_path)
    once = _row(CliRunner().invoke(coverage, args).output)
    shutil.copy(tmp_path / "l" / "s.jsonl", tmp_path / "l" / "s-copy.jsonl")
    twice = _row(CliRunner().invoke(coverage, args).output)
    assert once["blocked"] == twice["blocked"] == "15"
    assert once["queries"] == twice["queries"] == "315"


def test_a_deleted_tail_is_caught_with_the_last_known_sequence(tmp_path: Path) -> None:
    args = _setup(tmp_path)
    ok = _row(CliRunner().invoke(coverage, [*args, "--expect-seq", "s=2"]).output)
    assert ok["signature"] == "valid"
    ledger = tmp_path / "l" / "s.jsonl"
    ledger.write_bytes(b"".join(ledger.read_bytes().splitlines(keepends=True)[:2]))
    cut = _row(CliRunner().invoke(coverage, [*args, "--expect-seq", "s=2"]).output)
    assert cut["covered"] == "no"
    assert cut["signature"] == (
        "TRUNCATED: ends at sequence 1 but sequence 2 was seen before: "
        "records were deleted from the tail"
    )
    bad = CliRunner().invoke(coverage, [*args, "--expect-seq", "s"])
    assert bad.exit_code == 1 and "--expect-seq s: expected SITE=N" in bad.output


def test_bypass_attempts_are_not_counted_as_content_blocks(tmp_path: Path) -> None:
    keys = site_key(tmp_path, "s")
    key = load_private_key(keys / "audit.key")
    state = FilterState("sha256:idx", T0, "sha256:pol", "0.1.0")
    (tmp_path / "l").mkdir()
    with Ledger.open(tmp_path / "l" / "s.jsonl", key, site="s", site_kind="school",
                     instance="gw1") as led:  # fmt: skip
        answers = {("allowed", "none", "school"): 90, ("blocked", "adult", "school"): 4,
                   ("blocked", "bypass", "school"): 6}  # fmt: skip
        led.append(PeriodCounts(T0, T0 + HOUR, answers, {}), state)
    reg = tmp_path / "sites.yaml"
    reg.write_text("sites:\n  - {id: s, kind: school, public_key: keys/s/audit.pub}\n")
    out = CliRunner().invoke(coverage, ["--registry", str(reg), "--ledgers", str(tmp_path / "l"),
                                        "--now", NOW, "--format", "csv"])  # fmt: skip
    row = _row(out.output)
    assert (row["blocked"], row["queries"]) == ("4", "100")
