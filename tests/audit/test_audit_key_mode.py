"""A private audit key open to group or others is refused by serve and by check-config."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from resolver.audit.keys import load_private_key, private_key_problem, write_keypair
from resolver.errors import AuditError
from tests.stub_upstream import ROOT, free_port, lachan_command


def _lachan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lachan_command(), *args], capture_output=True, text=True, timeout=30, cwd=ROOT,
        check=False,
    )  # fmt: skip


def _config(tmp_path: Path, mode: int) -> tuple[Path, Path]:
    key, _pub = write_keypair(tmp_path / "keys")
    key.chmod(mode)
    path = tmp_path / "lachan.yaml"
    port = free_port(("127.0.0.1",))
    path.write_text(
        f"listen: ['127.0.0.1:{port}']\nupstreams: ['127.0.0.1']\n"
        f"audit: {{ledger: {tmp_path / 'ledger.jsonl'}, key: {key}}}\n"
    )
    return path, key


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_the_loader_refuses_a_key_others_can_read(tmp_path: Path, mode: int) -> None:
    key, _pub = write_keypair(tmp_path)
    key.chmod(mode)
    with pytest.raises(AuditError) as err:
        load_private_key(key)
    assert str(err.value) == (
        f"{key}: private key is open to group or others (mode {mode:04o}); run: chmod 600 {key}"
    )


def test_a_0600_or_0400_key_is_accepted(tmp_path: Path) -> None:
    key, _pub = write_keypair(tmp_path)
    assert private_key_problem(key) is None
    key.chmod(0o400)
    assert private_key_problem(key) is None and load_private_key(key) is not None


def test_serve_refuses_to_start_with_one_line_and_status_2(tmp_path: Path) -> None:
    path, key = _config(tmp_path, 0o644)
    result = _lachan("serve", "--config", str(path))
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert lines == [f"{path}: audit.key: {key}: private key is open to group or others "
                     f"(mode 0644); run: chmod 600 {key}"]  # fmt: skip
    assert not (tmp_path / "ledger.jsonl").exists()


def test_check_config_reports_the_open_key(tmp_path: Path) -> None:
    path, key = _config(tmp_path, 0o644)
    result = _lachan("check-config", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"{path}: audit.key: {key}: private key is open to group or others (mode 0644); "
        f"run: chmod 600 {key}"
    )
    key.chmod(0o600)
    fixed = _lachan("check-config", str(path))
    assert fixed.returncode == 0 and fixed.stdout.strip() == f"{path}: ok"
