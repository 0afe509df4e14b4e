"""The `lachan audit` commands end to end on real files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner

from resolver.commands.audit import audit


def test_keygen_prints_registry_line_and_protects_the_key(tmp_path: Path) -> None:
    result = CliRunner().invoke(audit, ["keygen", "--out", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    assert "public_key: ed25519:" in result.output
    assert stat.S_IMODE((tmp_path / "k" / "audit.key").stat().st_mode) == 0o600
    again = CliRunner().invoke(audit, ["keygen", "--out", str(tmp_path / "k")])
    assert again.exit_code == 1 and "already exists" in again.output


def test_keygen_into_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(audit, ["keygen", "--out", str(tmp_path / "file" / "keys")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output == (
        f"error: {tmp_path / 'file' / 'keys'}: cannot create the key folder: Not a directory\n"
    )


def test_verify_ok_and_broken(make_ledger, keydir: Path) -> None:
    path = make_ledger(hours=3)
    pub = str(keydir / "audit.pub")
    ok = CliRunner().invoke(audit, ["verify", str(path), "--public-key", pub])
    assert ok.exit_code == 0 and "OK, 3 records" in ok.output
    lines = path.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[1])
    obj["answers"]["blocked"]["adult"]["school"] += 1
    obj["queries"] += 1
    lines[1] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    bad = CliRunner().invoke(audit, ["verify", str(path), "--public-key", pub])
    assert bad.exit_code == 1
    assert f"{path}:2: signature does not verify" in bad.output


def test_verify_user_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        audit, ["verify", str(tmp_path / "none.jsonl"), "--public-key", "ed25519:AAAA"]
    )
    assert result.exit_code == 1 and result.output.count("\n") == 1


def test_report_csv_and_html_files(make_ledger, keydir: Path, tmp_path: Path) -> None:
    path = make_ledger(hours=3)
    out = tmp_path / "r.html"
    args = ["report", str(path.parent), "--from", "2025-11-28", "--to", "2025-11-29"]
    html = CliRunner().invoke(audit, [*args, "--format", "html", "--out", str(out),
                                      "--public-key", str(keydir / "audit.pub")])  # fmt: skip
    assert html.exit_code == 0, html.output
    assert "signature and chain valid" in out.read_text()
    csv_out = CliRunner().invoke(audit, args)
    assert csv_out.exit_code == 0
    assert csv_out.stdout.splitlines()[1] == (
        "thpt-a,school,2025-11-28T00:00:00Z,2025-11-28T01:00:00Z,(all),3,103,0,0"
    )
    assert csv_out.stderr == f"warning: {path}: no key for its site: unverified\n"


def test_a_report_out_in_a_missing_folder_is_one_line(make_ledger, tmp_path: Path) -> None:
    path = make_ledger(hours=1)
    out = tmp_path / "no-such-folder" / "r.html"
    result = CliRunner().invoke(audit, ["report", str(path), "--from", "2025-11-28",
                                        "--to", "2025-11-29", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines()[-1] == (
        f"error: --out {out}: cannot write: No such file or directory"
    )


def test_report_in_the_auditors_time_zone(make_ledger, tmp_path: Path) -> None:
    path = make_ledger(hours=3)
    args = ["report", str(path.parent), "--from", "2025-11-28T07:00", "--to", "2025-11-28T09:00"]
    local = CliRunner().invoke(audit, [*args, "--timezone", "Asia/Ho_Chi_Minh"])
    assert local.exit_code == 0, local.output
    assert local.stdout.splitlines()[1] == (  # naive --from is Hanoi time: 00:00Z
        "thpt-a,school,2025-11-28T07:00:00+07:00,2025-11-28T08:00:00+07:00,(all),3,103,0,0"
    )
    bad = CliRunner().invoke(audit, [*args, "--timezone", "Mars/Olympus_Mons"])
    assert bad.exit_code != 0 and "unknown time zone" in bad.output
