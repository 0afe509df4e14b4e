"""``lachan console passwd``: the password from stdin, mistakes in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from resolver.commands.console import console
from resolver.console.accounts import Account, check_password


def run(tmp_path: Path, *args: str, password: str) -> tuple[int, str]:
    config = tmp_path / "lachan.yaml"
    config.write_text(f'lists: {{state_dir: "{tmp_path}"}}\n')
    result = CliRunner().invoke(console, ["passwd", *args, "--config", str(config)],
                                input=password + "\n")  # fmt: skip
    return result.exit_code, result.output


def test_a_teacher_account_is_saved_in_the_state_folder(tmp_path: Path) -> None:
    code, out = run(tmp_path, "co-lan", "--role", "teacher", password="mat-khau-dai")
    assert code == 0 and "co-lan (teacher) saved" in out, out
    found = check_password(tmp_path / "console-users.json", "co-lan", "mat-khau-dai")
    assert found == Account("co-lan", "teacher")


def test_a_short_password_or_a_bad_name_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, password, expected in (
        (("admin",), "short", "at least 8 characters"),
        (("bad name",), "long-enough", "user name 'bad name'"),
    ):
        code, out = run(tmp_path, *args, password=password)
        assert code == 2 and expected in out and "Traceback" not in out, out
        assert len(out.strip().splitlines()) == 1, out
