"""``lachan allow`` as a teacher runs it: grant, list, refuse a never-allowed category, revoke."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.stub_upstream import ROOT, lachan_command


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lachan_command(), "allow", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_a_teacher_grants_lists_and_revokes_a_temporary_allow(tmp_path: Path) -> None:
    config = tmp_path / "lachan.yaml"
    config.write_text(f'lists: {{state_dir: "{tmp_path}"}}\n')
    granted = run(config, "khanacademy.org", "--for", "2h", "--profile", "school",
                  "--reason", "bài học toán")  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    assert "khanacademy.org" in granted.stdout and "+07" in granted.stdout
    listed = run(config, "--list")
    assert "khanacademy.org\tschool" in listed.stdout and "bài học toán" in listed.stdout
    revoked = run(config, "--revoke", "khanacademy.org")
    assert revoked.returncode == 0 and "no temporary allows" in run(config, "--list").stdout


def test_a_never_allowed_category_and_bad_input_are_refused_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "lachan.yaml"
    config.write_text(f'lists: {{state_dir: "{tmp_path}"}}\n')
    cases = [
        (("pornhub.com", "--for", "2h", "--profile", "school", "--reason", "x"), "adult"),
        (("example.org", "--for", "1m", "--profile", "school", "--reason", "x"), "30m"),
        (("example.org", "--for", "1h", "--profile", "nope", "--reason", "x"), "unknown profile"),
        (("bad name!", "--for", "1h", "--profile", "school", "--reason", "x"), "bad name!"),
        (("example.org", "--for", "1h", "--profile", "school"), "reason"),
    ]
    for args, expected in cases:
        done = run(config, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert "no temporary allows" in run(config, "--list").stdout


def test_a_category_the_site_lists_as_never_allowed_is_refused_too(tmp_path: Path) -> None:
    config = tmp_path / "lachan.yaml"
    config.write_text(f'lists: {{state_dir: "{tmp_path}"}}\n'
                      'console: {listen: "127.0.0.1:0", never_allow: [gambling]}\n')  # fmt: skip
    done = run(config, "188bet.vote", "--for", "1h", "--profile", "school", "--reason", "x")
    assert done.returncode == 2 and "blocked as gambling, which can never be opened" in done.stderr
    assert "no temporary allows" in run(config, "--list").stdout
