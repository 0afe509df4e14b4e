"""Both stores behind one interface, and their change feeds, against a real redis-server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from resolver.subscribers.redis_store import RedisStore
from resolver.subscribers.replica import Binding
from resolver.subscribers.store import FileStore, StoreUnavailable, SubscriberStore, open_store
from tests.subscribers.redis_server import RedisServer

B1 = Binding("line-1", 1000.0, "10.0.0.1")
B2 = Binding("line-2", 2000.0, "10.0.0.2")


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SubscriberStore]:
    if request.param == "file":
        yield open_store(f"file:{tmp_path / 'subscribers.json'}")
        return
    server = request.getfixturevalue("redis_server")
    opened = open_store(server.url)
    yield opened
    opened.close()


def test_profiles_are_set_read_and_unset(store: SubscriberStore) -> None:
    store.set_profiles({"line-1": "under16", "line-2": "isp-default"})
    assert store.profile("line-1") == "under16"
    store.set_profiles({"line-1": None})
    assert store.profile("line-1") is None
    assert store.load()[0] == {"line-2": "isp-default"}


def test_bindings_are_stored_under_their_canonical_prefix(store: SubscriberStore) -> None:
    store.bind(["192.0.2.7", "2001:db8:1::/56"], B1)
    store.bind(["192.0.2.8"], B2)
    assert store.load()[1] == {"192.0.2.7/32": B1, "2001:db8:1::/56": B1, "192.0.2.8/32": B2}
    store.unbind(["192.0.2.7/32"])
    assert set(store.load()[1]) == {"2001:db8:1::/56", "192.0.2.8/32"}


def test_accounting_off_removes_only_that_nas_bindings(store: SubscriberStore) -> None:
    store.bind(["192.0.2.7", "192.0.2.9"], B1)
    store.bind(["192.0.2.8"], B2)
    assert store.unbind_nas("10.0.0.1") == 2
    assert store.load()[1] == {"192.0.2.8/32": B2}


def test_the_redis_feed_names_each_changed_key(redis_server: RedisServer) -> None:
    follower, writer = RedisStore(redis_server.url), RedisStore(redis_server.url)
    stop = threading.Event()
    feed = follower.follow(stop)
    assert next(feed) is None  # subscribed: the follower loads everything now
    writer.bind(["192.0.2.7"], B1)
    assert next(feed) == [("binding", "192.0.2.7/32", B1)]
    writer.set_profiles({"line-1": "under16"})
    assert next(feed) == [("profile", "line-1", "under16")]
    stop.set()


def test_the_file_feed_asks_for_a_reload_when_the_file_changes(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s.json")
    stop = threading.Event()
    feed = store.follow(stop)
    assert next(feed) is None
    store.set_profiles({"line-1": "under16"})
    assert next(feed) is None
    assert store.load()[0] == {"line-1": "under16"}
    stop.set()


def test_an_unreachable_redis_is_a_store_error_not_a_traceback(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    redis_server.kill()
    with pytest.raises(StoreUnavailable, match="subscriber store redis://127.0.0.1"):
        store.load()


def test_a_damaged_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(StoreUnavailable, match="not valid JSON"):
        FileStore(tmp_path / "s.json").load()


def test_a_change_list_applies_in_order_in_one_write(store: SubscriberStore) -> None:
    store.change([("192.0.2.7", B1), ("192.0.2.7", None), ("192.0.2.8", B2), ("192.0.2.9", B1)])
    store.change([("192.0.2.9", None), ("192.0.2.9", B2)])
    assert store.load()[1] == {"192.0.2.8/32": B2, "192.0.2.9/32": B2}
