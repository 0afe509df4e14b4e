"""The console: section, the block-page address it gives, the users file it writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from resolver import config
from resolver.allows import AllowStore
from resolver.console.accounts import Account, AccountError, check_password, set_password
from resolver.console.settings import allowed_network, block_page_address, never_categories
from resolver.errors import ConfigError
from resolver.state import build_state


def test_the_console_is_off_unless_listen_is_set() -> None:
    assert config.parse("site: {id: x}\n", "t").console is None


def test_the_block_page_defaults_to_port_80_of_the_console_host() -> None:
    settings = config.parse('console: {listen: "192.168.10.53:8080"}\n', "t").console
    assert settings is not None
    assert (settings.blockpage_host, settings.blockpage_port) == ("192.168.10.53", 80)
    assert block_page_address(settings) == ("192.168.10.53", None)
    assert allowed_network(settings, "192.168.10.7") and not allowed_network(settings, "8.8.8.8")


def test_an_unspecified_console_host_gives_no_block_page_address() -> None:
    settings = config.parse('console: {listen: "0.0.0.0:8080"}\n', "t").console
    assert block_page_address(settings) == (None, None)


def test_operator_mistakes_are_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse('console: {listen: "127.0.0.1:80", networks: [nope], colour: 1}\n', "f.yaml")
    problems = caught.value.problems
    assert any(p.startswith("f.yaml: console.colour: unknown key") for p in problems), problems
    assert any("console.networks[0]" in p for p in problems), problems


def test_a_blockpage_profile_without_address_needs_the_console(tmp_path: Path) -> None:
    from resolver.state import load_policies

    (tmp_path / "school.yaml").write_text("block_answer: {mode: blockpage}\n")
    text = f'policies: {{local_dir: "{tmp_path}"}}\n'
    with pytest.raises(ConfigError, match="console.listen"):
        load_policies(config.parse(text, "t"))
    with_console = config.parse(text + 'console: {listen: "127.0.0.1:8080"}\n', "t")
    assert "school" in load_policies(with_console)[0]


def test_the_users_file_is_private_and_holds_argon2_hashes(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    set_password(path, "co-lan", "mat-khau-dai", "teacher")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "$argon2id$" in path.read_text() and "mat-khau-dai" not in path.read_text()
    assert check_password(path, "co-lan", "mat-khau-dai") == Account("co-lan", "teacher")
    assert check_password(path, "co-lan", "wrong") is None
    assert check_password(path, "nobody", "mat-khau-dai") is None
    with pytest.raises(AccountError):
        set_password(path, "x", "short", "teacher")
    with pytest.raises(AccountError):
        set_password(path, "x", "long-enough", "principal")


def test_an_entry_without_a_hash_is_refused_even_with_the_dummy_password(tmp_path: Path) -> None:
    # Before: the missing hash fell back to the unknown-user dummy, whose password then
    # logged the entry in.
    path = tmp_path / "users.json"
    path.write_text('{"users": {"co-lan": {"role": "teacher"}}}', encoding="utf-8")
    assert check_password(path, "co-lan", "lachan: no such user") is None


def test_importing_the_console_and_collector_hashes_nothing() -> None:
    # One argon2 hash at import cost every `lachan serve` ~90 ms before its first answer.
    import subprocess
    import sys

    code = (
        "import argon2, time\n"
        "calls = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda self, p, **k: calls.append(p) or real(self, p, **k)\n"
        "import resolver.console.accounts, resolver.collector.auth\n"
        "print(len(calls))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_run_as_root_the_users_file_belongs_to_the_state_folders_owner(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "state"
    folder.mkdir()
    root = os.geteuid() == 0
    if root:
        os.chown(folder, 65534, 65534)  # the service's user owns its state folder
    set_password(folder / "users.json", "admin", "long-enough", "admin")
    assert (folder / "users.json").stat().st_uid == (65534 if root else os.geteuid())


def test_a_reload_names_a_console_change_as_needing_a_restart() -> None:
    from resolver.reloadable import applied_config, restart_needed

    old = config.parse('console: {listen: "127.0.0.1:8080"}\n', "t")
    new = config.parse('console: {listen: "127.0.0.1:8081"}\n', "t")
    assert restart_needed(old, new) == [
        "console (the console and block page sockets are bound once at start)"
    ]
    assert applied_config(old, new).console == old.console  # the bound one stays in force


def test_never_allow_adds_categories_to_adult_and_refuses_what_is_not_one() -> None:
    settings = config.parse('console: {listen: "127.0.0.1:80", never_allow: [gambling]}\n',
                            "t").console  # fmt: skip
    assert settings is not None and settings.never_allow == {"adult", "gambling"}
    assert never_categories(None) == {"adult"}  # without a console, adult still
    with pytest.raises(ConfigError) as caught:
        config.parse('console: {listen: "127.0.0.1:80", never_allow: [adult, "x.com"]}\n', "f")
    assert any("console.never_allow[1]" in p for p in caught.value.problems), caught.value


def test_a_misspelt_never_allow_category_is_refused_not_left_open() -> None:
    """'gamblng' would leave gambling open to every temporary allow: a silent hole."""
    with pytest.raises(ConfigError) as caught:
        config.parse('console: {listen: "127.0.0.1:80", never_allow: [gamblng]}\n', "f")
    (line,) = caught.value.problems
    assert line.startswith("f: console.never_allow[0]: unknown category 'gamblng' (did you mean "
                           "gambling? known: adult, dating, doh, drugs, gambling,")  # fmt: skip


def test_served_profiles_never_open_what_the_site_never_allows(tmp_path: Path) -> None:
    cfg = config.parse(f'lists: {{enabled: false, state_dir: "{tmp_path}"}}\n'
                       'console: {listen: "127.0.0.1:0", never_allow: [gambling]}\n', "t")  # fmt: skip
    AllowStore(tmp_path).add("example.org", "school", 3600, "bài học", "co-lan")
    school = build_state(cfg).profiles["school"]
    assert school.temporary.exact == {"example.org"}
    assert school.never_open == {"adult", "gambling"}  # a gambling name below it stays shut
