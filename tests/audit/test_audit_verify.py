"""Tampering with a ledger in each way the audit cares about is detected at the right line."""

from __future__ import annotations

import json
from pathlib import Path

from resolver.audit.canonical import canonical_bytes
from resolver.audit.keys import load_public_key, write_keypair
from resolver.audit.verify import verify_ledger


def _rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _problem(path: Path, key) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    result = verify_ledger(path, key)
    assert result.problem is not None, "tampering went unnoticed"
    return result.problem.line, result.problem.message


def test_untouched_ledger_verifies(make_ledger, public_key) -> None:
    assert verify_ledger(make_ledger(), public_key).ok


def test_changed_count_breaks_the_signature(make_ledger, public_key) -> None:
    path = make_ledger()
    lines = path.read_bytes().splitlines()
    obj = json.loads(lines[2])
    obj["answers"]["blocked"]["adult"]["school"] = 0  # hide the blocks of hour 3
    obj["queries"] -= 3  # and keep the record self-consistent
    lines[2] = canonical_bytes(obj)
    _rewrite(path, lines)
    assert _problem(path, public_key) == (3, "signature does not verify: the record was "
                                             "altered after signing")  # fmt: skip


def test_inconsistent_count_is_refused_even_without_a_key(make_ledger) -> None:
    path = make_ledger()
    lines = path.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"queries":105', b'"queries":999')
    _rewrite(path, lines)
    line, message = _problem(path, None)
    assert line == 2 and "queries" in message


def test_deleted_record_breaks_the_link(make_ledger, public_key) -> None:
    path = make_ledger()
    lines = path.read_bytes().splitlines()
    del lines[2]
    _rewrite(path, lines)
    line, message = _problem(path, public_key)
    assert line == 3 and "does not link" in message


def test_deleted_first_record_is_detected(make_ledger, public_key) -> None:
    path = make_ledger()
    _rewrite(path, path.read_bytes().splitlines()[1:])
    line, message = _problem(path, public_key)
    assert line == 1 and "does not start the chain" in message


def test_reordered_records_are_detected(make_ledger, public_key) -> None:
    path = make_ledger()
    lines = path.read_bytes().splitlines()
    lines[1], lines[3] = lines[3], lines[1]
    _rewrite(path, lines)
    line, message = _problem(path, public_key)
    assert line == 2 and "does not link" in message


def test_truncated_last_line_is_reported_not_accepted(make_ledger, public_key) -> None:
    path = make_ledger(hours=5)
    path.write_bytes(path.read_bytes()[:-1])  # only the newline is missing
    line, message = _problem(path, public_key)
    assert line == 5 and "torn last line" in message
    assert len(verify_ledger(path, public_key).records) == 4


def test_other_key_is_named(make_ledger, tmp_path: Path) -> None:
    path = make_ledger()
    other = load_public_key(write_keypair(tmp_path / "other")[1])
    line, message = _problem(path, other)
    assert line == 1 and message.startswith("signed by key ")


def test_hand_edit_that_keeps_meaning_is_still_flagged(make_ledger, public_key) -> None:
    path = make_ledger()
    lines = path.read_bytes().splitlines()
    lines[0] = json.dumps(json.loads(lines[0]), indent=1).replace("\n", " ").encode()
    _rewrite(path, lines)
    line, message = _problem(path, public_key)
    assert line == 1 and "canonical" in message


def test_garbage_and_empty_ledgers(tmp_path: Path, public_key) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert _problem(empty, public_key) == (1, "empty ledger")
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"hello\n")
    assert _problem(junk, public_key) == (1, "not valid JSON")
