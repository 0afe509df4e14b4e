"""Allowing for good: only into policies.local_dir, merged into the profile's file, reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from resolver import config
from resolver.allows import AllowError
from resolver.console.actions import allow_for_good
from resolver.console.audit_log import AuditLog
from resolver.state import build_state


def setup(tmp_path: Path, local: bool) -> tuple[config.Config, AuditLog]:
    text = f'lists: {{enabled: false, state_dir: "{tmp_path}"}}\n'
    if local:
        (tmp_path / "local").mkdir()
        (tmp_path / "local" / "school.yaml").write_text("allow: [olm.vn]\n")
        text += f'policies: {{local_dir: "{tmp_path / "local"}"}}\n'
    return config.parse(text, "t"), AuditLog(tmp_path, lambda: 1.0)


def test_without_a_local_folder_a_permanent_allow_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    cfg, audit = setup(tmp_path, local=False)
    with pytest.raises(AllowError, match="policies.local_dir"):
        allow_for_good(cfg, build_state(cfg), audit, "example.org", "school", "admin", 1.0,
                       reload=lambda: None)  # fmt: skip


def test_a_permanent_allow_extends_the_local_file_and_reloads(tmp_path: Path) -> None:
    cfg, audit = setup(tmp_path, local=True)
    reloads: list[int] = []
    path = allow_for_good(cfg, build_state(cfg), audit, "Example.ORG", "school", "admin", 1.0,
                          reload=lambda: reloads.append(1))  # fmt: skip
    assert yaml.safe_load(path.read_text()) == {"allow": ["olm.vn", "example.org", "*.example.org"]}
    assert reloads == [1]
    assert '"action": "allow-permanent"' in audit.path.read_text()
    assert "example.org" in build_state(cfg).profiles["school"].allow.exact
