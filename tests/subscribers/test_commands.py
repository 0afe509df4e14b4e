"""``lachan subscribers`` run as the real command against a real redis-server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from resolver.subscribers.redis_store import RedisStore
from resolver.subscribers.replica import Binding
from tests.stub_upstream import free_port, lachan_command
from tests.subscribers.redis_server import RedisServer


@pytest.fixture
def config_file(tmp_path: Path, redis_server: RedisServer) -> Path:
    path = tmp_path / "lachan.yaml"
    path.write_text(
        f"site: {{timezone: Asia/Ho_Chi_Minh}}\nlists: {{enabled: false}}\n"
        f"subscribers: {{store: '{redis_server.url}', default: isp-default}}\n",
        encoding="utf-8",
    )
    return path


def run(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lachan_command(), "subscribers", *args[:1], "--config", str(config_file), *args[1:]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_set_show_and_unset_a_subscriber(config_file: Path, redis_server: RedisServer) -> None:
    assert run(config_file, "set", "line-1", "under16").returncode == 0
    assert RedisStore(redis_server.url).profile("line-1") == "under16"
    RedisStore(redis_server.url).bind(["192.0.2.7"], Binding("line-1", 0.0, "10.0.0.1"))
    shown = run(config_file, "show", "line-1")
    assert shown.stdout == "line-1: profile under16\n  192.0.2.7/32 (NAS 10.0.0.1)\n"
    assert run(config_file, "unset", "line-1").returncode == 0
    assert run(config_file, "show", "line-1").stdout.startswith("line-1: profile isp-default (")


def test_where_names_subscriber_profile_and_since_in_local_time(
    config_file: Path, redis_server: RedisServer
) -> None:
    store = RedisStore(redis_server.url)
    store.set_profiles({"line-1": "under16"})
    store.bind(["2001:db8:7::/56"], Binding("line-1", 1_780_000_000.0, "10.0.0.1"))
    out = run(config_file, "where", "2001:db8:7:1::5").stdout
    assert out == (
        "2001:db8:7:1::5: subscriber line-1 via 2001:db8:7::/56 since 2026-05-29 03:26:40 +07 "
        "(NAS 10.0.0.1); profile under16\n"
    )
    assert (
        "bound to no subscriber; profile isp-default"
        in run(config_file, "where", "192.0.2.1").stdout
    )


def test_import_is_bulk_and_idempotent(
    config_file: Path, tmp_path: Path, redis_server: RedisServer
) -> None:
    rows = "id,profile\n" + "".join(f"line-{i},under16\n" for i in range(500))
    (tmp_path / "optin.csv").write_text(rows, encoding="utf-8")
    first = run(config_file, "import", str(tmp_path / "optin.csv"))
    assert first.stdout.endswith(": 500 subscribers, 500 changed\n"), first.stderr
    again = run(config_file, "import", str(tmp_path / "optin.csv"))
    assert again.stdout.endswith(": 500 subscribers, 0 changed\n")
    assert len(RedisStore(redis_server.url).load()[0]) == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "line-1", "adults"), "lachan subscribers: PROFILE: unknown profile 'adults'"),
        (("where", "not-an-ip"), "lachan subscribers: IP: not an address"),
    ],
)
def test_a_mistake_is_one_line_and_changes_nothing(
    config_file: Path, redis_server: RedisServer, args: tuple[str, ...], message: str
) -> None:
    done = run(config_file, *args)
    assert done.returncode == 2 and done.stderr.startswith(message)
    assert done.stderr.count("\n") == 1 and RedisStore(redis_server.url).load() == ({}, {})


def test_a_bad_csv_row_names_file_and_line(config_file: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("line-1,under16\nline-2,nope\n", encoding="utf-8")
    done = run(config_file, "import", str(tmp_path / "bad.csv"))
    assert done.returncode == 2
    assert f"{tmp_path / 'bad.csv'}:2: unknown profile 'nope'" in done.stderr


def test_a_csv_that_is_not_utf8_is_named_with_what_to_do(config_file: Path, tmp_path: Path) -> None:
    """A spreadsheet saved as "CSV" in Windows-1258 (Vietnamese Windows) is not UTF-8."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes("thuê-bao-1,under16\n".encode("cp1258"))
    done = run(config_file, "import", str(sheet))
    assert (done.returncode, done.stderr) == (
        2, f"lachan subscribers: {sheet}:1: not UTF-8 text (save the sheet as \"CSV UTF-8\")\n"
    )  # fmt: skip


def test_a_sheet_saved_with_semicolons_says_so(config_file: Path, tmp_path: Path) -> None:
    """Excel in a Vietnamese locale (decimal comma) separates CSV columns with ';'."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id;profile\nline-1;under16\n", encoding="utf-8")
    done = run(config_file, "import", str(sheet))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"lachan subscribers: {sheet}:1: expected ID,PROFILE, got 1 fields "
        "(columns separated by ';'? save the sheet with ',')"
    )


def test_without_a_subscribers_section_the_command_says_so(tmp_path: Path) -> None:
    (tmp_path / "plain.yaml").write_text("site: {id: x}\n", encoding="utf-8")
    done = run(tmp_path / "plain.yaml", "show", "line-1")
    assert done.returncode == 2 and "subscribers: missing" in done.stderr


def test_explain_shows_the_profile_a_subscriber_chose_for_an_address(
    config_file: Path, redis_server: RedisServer
) -> None:
    store = RedisStore(redis_server.url)
    store.set_profiles({"line-1": "under16"})
    store.bind(["192.0.2.7"], Binding("line-1", 1_780_000_000.0, "10.0.0.1"))
    command = [*lachan_command(), "explain", "www.google.com", "--config", str(config_file)]
    bound = subprocess.run([*command, "--client", "192.0.2.7"], capture_output=True, text=True)
    other = subprocess.run([*command, "--client", "192.0.2.8"], capture_output=True, text=True)
    assert bound.returncode == 0, bound.stderr
    assert "under16" in bound.stdout and "is bound to an opted-in subscriber" in bound.stdout
    assert "line-1" not in bound.stdout
    assert "isp-default" in other.stdout and "under16" not in other.stdout


def test_check_config_validates_the_section_without_touching_the_store(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    listen = f"listen: ['127.0.0.1:{free_port(('127.0.0.1',))}']\n"  # serve needs one
    good.write_text(listen + "subscribers: {store: 'redis://127.0.0.1:1/0'}\n", "utf-8")
    bad.write_text("subscribers: {store: 'redis://127.0.0.1:1/0', default: adults}\n", "utf-8")
    check = [*lachan_command(), "check-config"]
    ok = subprocess.run([*check, str(good)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout == f"{good}: ok\n" and ok.stderr == ""
    refused = subprocess.run([*check, str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert f"{bad}: subscribers.default: unknown profile 'adults'" in refused.stderr


def test_config_may_come_before_the_subcommand(
    config_file: Path, redis_server: RedisServer
) -> None:
    done = subprocess.run(
        [*lachan_command(), "subscribers", "--config", str(config_file), "set", "line-7", "under16"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert RedisStore(redis_server.url).profile("line-7") == "under16"
