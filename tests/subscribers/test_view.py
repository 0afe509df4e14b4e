"""The client map asks the replica first; the config section; dropping one client's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.errors import ConfigError
from resolver.state import build_state
from resolver.stats import Stats
from resolver.subscribers.replica import Binding
from resolver.subscribers.store import FileStore

LISTENER = ("127.0.0.1", 53)


def subscriber_config(tmp_path: Path, extra: str = "") -> config.Config:
    text = (
        "upstreams: ['127.0.0.1:9']\nlists: {enabled: false}\n"
        f"subscribers:\n  store: 'file:{tmp_path / 'subs.json'}'\n  default: isp-default\n"
    )
    return config.parse(text + extra, "test.yaml")


def test_a_bound_address_gets_its_subscribers_profile_others_the_default(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "subs.json")
    store.set_profiles({"line-1": "under16"})
    store.bind(["192.0.2.7", "2001:db8:7::/56"], Binding("line-1", 0.0, "10.0.0.1"))
    store.bind(["192.0.2.8"], Binding("line-2", 0.0, "10.0.0.1"))
    clients = build_state(subscriber_config(tmp_path)).clients
    assert clients.profile_for("192.0.2.7", LISTENER).name == "under16"
    assert clients.profile_for("2001:db8:7:1::1", LISTENER).name == "under16"
    assert clients.profile_for("192.0.2.8", LISTENER).name == "isp-default"  # no opt-in
    assert clients.profile_for("192.0.2.9", LISTENER).name == "isp-default"  # unbound


def test_explain_says_why_without_naming_the_subscriber(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "subs.json")
    store.set_profiles({"line-secret-42": "under16"})
    store.bind(["192.0.2.7"], Binding("line-secret-42", 1_780_000_000.0, "10.0.0.1"))
    profile, why = build_state(subscriber_config(tmp_path)).clients.explain("192.0.2.7", LISTENER)
    assert profile.name == "under16"
    assert "is bound to an opted-in subscriber (since when: lachan subscribers where)" in why
    assert "line-secret-42" not in why


def test_forgetting_a_client_drops_its_state_and_nothing_else(tmp_path: Path) -> None:
    cfg = subscriber_config(tmp_path)
    resolver = build_resolver(cfg, build_state(cfg), Stats())
    table = resolver.client_table()
    for ip in ("192.0.2.7", "192.0.2.8", "2001:db8::1"):
        resolver.client(table, ip, LISTENER)
    resolver.forget_clients({"192.0.2.7"})
    assert set(table) == {"192.0.2.8", "2001:db8::1"}
    resolver.forget_clients((), lambda ip: ":" in ip)
    assert set(table) == {"192.0.2.8"}
    resolver.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("subscribers: {default: x}", "test.yaml: subscribers.store: missing"),
        ("subscribers: {store: 'mysql://x'}", "test.yaml: subscribers.store: must start with"),
        ("subscribers: {store: 'file:x', colour: 1}", "test.yaml: subscribers.colour: unknown"),
        (
            "subscribers: {store: 'file:x', radius: {secret_file: s, nas: [bad]}}",
            "test.yaml: subscribers.radius.nas[0]:",
        ),
        (
            "subscribers: {store: 'file:x', radius: {secret_file: s, nas: [10.0.0.0/8], "
            "id_attribute: Foo}}",
            "test.yaml: subscribers.radius.id_attribute: must be one of",
        ),
        ("subscribers: {store: 'file:x', radius: {nas: []}}", "subscribers.radius.secret_file"),
        # serve and `subscribers set` ended in urllib's traceback on these two
        (
            "subscribers: {store: 'redis://[::1/0'}",
            "test.yaml: subscribers.store: not a valid URL (Invalid IPv6 URL): 'redis://[::1/0'",
        ),
        (
            "subscribers: {store: 'redis://redis.isp:637900/0'}",
            "test.yaml: subscribers.store: not a valid URL (Port out of range 0-65535): ",
        ),
        # and this one quietly used database 0
        (
            "subscribers: {store: 'redis://127.0.0.1:6379/subs'}",
            "test.yaml: subscribers.store: the database 'subs' is not a number (redis://HOST:PORT/DB)",
        ),
        (
            "subscribers: {store: 'redis:///0'}",
            "test.yaml: subscribers.store: no host in 'redis:///0' (redis://HOST:PORT/DB)",
        ),
    ],
)
def test_a_bad_section_is_one_line_naming_file_and_key(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse("upstreams: ['127.0.0.1:9']\n" + section, "test.yaml")
    assert any(line.startswith(message) or message in line for line in caught.value.problems)
    assert all("\n" not in line for line in caught.value.problems)


def test_an_unknown_default_profile_names_the_key(tmp_path: Path) -> None:
    cfg = config.parse(
        f"upstreams: ['127.0.0.1:9']\nlists: {{enabled: false}}\n"
        f"subscribers: {{store: 'file:{tmp_path / 's.json'}', default: nope}}",
        "test.yaml",
    )
    with pytest.raises(ConfigError, match=r"test.yaml: subscribers.default: unknown profile"):
        build_state(cfg)


def test_without_the_section_nothing_of_it_is_loaded() -> None:
    cfg = config.parse("upstreams: ['127.0.0.1:9']\nlists: {enabled: false}\n", "test.yaml")
    assert cfg.subscribers is None
    assert build_state(cfg).clients.subscribers is None


def test_a_reload_that_changes_the_subscribers_section_asks_for_a_restart(tmp_path: Path) -> None:
    from resolver.reloadable import restart_needed

    old = subscriber_config(tmp_path)
    new = config.parse(
        "upstreams: ['127.0.0.1:9']\nlists: {enabled: false}\n"
        "subscribers: {store: 'redis://127.0.0.1:6390/0'}\n",
        "test.yaml",
    )
    assert [line.split(" ")[0] for line in restart_needed(old, new)] == ["subscribers"]
