"""The follower keeps a replica current from a real redis-server, through an outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from resolver.policy.clients import address_key
from resolver.subscribers.follow import Follower, invalidator
from resolver.subscribers.redis_store import RedisStore
from resolver.subscribers.replica import Affected, Binding, Replica
from tests.subscribers.redis_server import RedisServer

B1 = Binding("line-1", 1000.0, "10.0.0.1")


async def until(check: Callable[[], bool], seconds: float) -> float:
    """Seconds it took ``check`` to hold; raises if it did not within ``seconds``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_a_write_elsewhere_reaches_the_replica_within_a_second(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        replica, seen = Replica(), []
        follower = Follower(
            RedisStore(redis_server.url), replica, asyncio.get_running_loop(), seen.append
        )
        follower.start()
        writer = RedisStore(redis_server.url)
        await until(lambda: follower.up and _subscribed(writer), 5)
        await asyncio.sleep(0.1)
        assert seen == []  # an empty store: the resync changed nothing
        writer.set_profiles({"line-1": "under16"})
        writer.bind(["192.0.2.7"], B1)
        took = await until(lambda: replica.binding(*address_key("192.0.2.7")) == B1, 1.0)
        assert took < 1.0 and replica.profiles == {"line-1": "under16"}
        assert any("192.0.2.7" in a.addresses for a in seen)
        follower.close()

    asyncio.run(scenario())


def test_an_outage_keeps_the_replica_and_a_restart_resynchronises(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        replica = Replica()
        writer = RedisStore(redis_server.url)
        writer.bind(["192.0.2.7"], B1)
        follower = Follower(
            RedisStore(redis_server.url), replica, asyncio.get_running_loop(), lambda a: None
        )
        follower.start()
        await until(lambda: replica.bindings_count() == 1, 5)
        redis_server.kill()
        await until(lambda: not follower.up, 5)
        assert replica.binding(*address_key("192.0.2.7")) == B1  # the last replica serves
        redis_server.start()
        writer.unbind(["192.0.2.7"])  # made while this follower may still be reconnecting
        writer.bind(["192.0.2.9"], B1)
        await until(lambda: follower.up and replica.bindings_count() == 1, 10)
        assert replica.binding(*address_key("192.0.2.9")) == B1
        assert replica.binding(*address_key("192.0.2.7")) is None
        follower.close()

    asyncio.run(scenario())


def test_a_replica_loaded_at_the_stores_version_is_not_reloaded(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        writer = RedisStore(redis_server.url)
        writer.bind(["192.0.2.7"], B1)
        reader, replica = RedisStore(redis_server.url), Replica()
        replica.replace(*reader.load())
        replica.version = reader.loaded_version
        replica.apply([("binding", "192.0.2.99", B1)])  # a marker the store does not have
        replica.version = reader.loaded_version
        follower = Follower(reader, replica, asyncio.get_running_loop(), lambda a: None)
        follower.start()
        await until(lambda: _subscribed(writer), 5)
        await asyncio.sleep(0.3)
        assert replica.binding(*address_key("192.0.2.99")) == B1  # no reload happened
        writer.bind(["192.0.2.8"], B1)  # a change: applied, and the version forgotten
        await until(lambda: replica.binding(*address_key("192.0.2.8")) == B1, 1.0)
        assert replica.version is None
        follower.close()

    asyncio.run(scenario())


def test_the_invalidator_names_exact_addresses_and_covered_ones() -> None:
    replica, calls = Replica(), []
    replica.apply([("binding", "192.0.2.7", B1), ("binding", "2001:db8::/64", B1)])
    changed = invalidator(replica, lambda addresses, covers: calls.append((addresses, covers)))
    changed(Affected(addresses={"192.0.2.7"}))
    assert calls[-1] == ({"192.0.2.7"}, None)
    changed(Affected(subscribers={"line-1"}))
    covers = calls[-1][1]
    assert covers("192.0.2.7") and covers("2001:db8::5") and not covers("192.0.2.8")
    assert not covers("not an address")


def _subscribed(store: RedisStore) -> bool:
    return bool(store._client.pubsub_numsub("lachan:subscribers:changes")[0][1])
