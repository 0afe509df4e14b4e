"""The shared store: Redis or Valkey, through redis-py; changes announced on one channel.

Two hashes hold the state (``lachan:subscribers``: ID → profile; ``lachan:bindings``:
prefix → "since<TAB>NAS<TAB>ID"). Every write publishes the key it changed in the same MULTI, and
a replica re-reads that key when told: a message only says *what* changed, so replaying an
old message can never undo a newer write. A watcher subscribes first and loads second, so no
change falls between the two.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import redis

from ..errors import StoreUnavailable
from .replica import Binding, Update, canonical_prefix

PROFILES, BINDINGS, CHANNEL = "lachan:subscribers", "lachan:bindings", "lachan:subscribers:changes"
VERSION = "lachan:subscribers:version"  # bumped by every write: a restart reloads only if moved
_BATCH = 1000  # updates applied per loop callback: bounded work between DNS packets


class RedisStore:
    """A ``SubscriberStore`` on one Redis/Valkey database (a replica set behind its address)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=10.0, socket_connect_timeout=1.0
        )
        self.loaded_version: object = None

    def version(self) -> object:
        with _unavailable(self.url):
            return self._client.get(VERSION)

    def load(self) -> tuple[dict[str, str], dict[str, Binding]]:
        """Both hashes and their version, read in one transaction (one consistent state)."""
        with _unavailable(self.url):
            pipe = self._client.pipeline(transaction=True)
            pipe.get(VERSION)
            pipe.hgetall(PROFILES)
            pipe.hgetall(BINDINGS)
            version, profiles, raw = pipe.execute()
        self.loaded_version = version
        decoded = {key: _binding(value) for key, value in raw.items()}
        return dict(profiles), {k: b for k, b in decoded.items() if b is not None}

    def profile(self, subscriber: str) -> str | None:
        with _unavailable(self.url):
            return self._client.hget(PROFILES, subscriber)  # type: ignore[return-value]

    def set_profiles(self, profiles: Mapping[str, str | None]) -> None:
        items = list(profiles.items())
        with _unavailable(self.url):
            for start in range(0, len(items), _BATCH):
                pipe = self._client.pipeline(transaction=True)
                for subscriber, name in items[start : start + _BATCH]:
                    if name is None:
                        pipe.hdel(PROFILES, subscriber)
                    else:
                        pipe.hset(PROFILES, subscriber, name)
                    pipe.publish(CHANNEL, "p " + subscriber)
                pipe.incr(VERSION)
                pipe.execute()

    def bind(self, prefixes: list[str], binding: Binding) -> None:
        self.change([(prefix, binding) for prefix in prefixes])

    def unbind(self, prefixes: list[str]) -> None:
        self.change([(prefix, None) for prefix in prefixes])

    def change(self, changes: list[tuple[str, Binding | None]]) -> None:
        """Bind (or, with None, unbind) each prefix, in order, in one MULTI: a burst of
        accounting costs one round trip, not one per request."""
        with _unavailable(self.url):
            pipe = self._client.pipeline(transaction=True)
            for prefix, binding in changes:
                key = canonical_prefix(prefix)
                if binding is None:
                    pipe.hdel(BINDINGS, key)
                else:
                    pipe.hset(BINDINGS, key, _encode(binding))
                pipe.publish(CHANNEL, "b " + key)
            pipe.incr(VERSION)
            pipe.execute()

    def unbind_nas(self, nas: str) -> int:
        _, bindings = self.load()
        gone = [prefix for prefix, b in bindings.items() if b.nas == nas]
        if gone:
            self.unbind(gone)
        return len(gone)

    def follow(self, stop: threading.Event) -> Iterator[list[Update] | None]:
        """None once subscribed (load everything), then the updates each message names."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            with _unavailable(self.url):
                pubsub.subscribe(CHANNEL)
            yield None
            while not stop.is_set():
                with _unavailable(self.url):
                    keys = _drain(pubsub)
                    updates = self._read(keys) if keys else []
                if updates:
                    yield updates
        finally:
            pubsub.close()

    def close(self) -> None:
        self._client.close()

    def _read(self, keys: list[str]) -> list[Update]:
        pipe = self._client.pipeline(transaction=False)
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            pipe.hget(PROFILES if key.startswith("p ") else BINDINGS, key[2:])
        values = pipe.execute()
        updates: list[Update] = []
        for key, value in zip(wanted, values, strict=True):
            if key.startswith("p "):
                updates.append(("profile", key[2:], value))
            else:
                updates.append(("binding", key[2:], _binding(value) if value else None))
        return updates


def _drain(pubsub: Any) -> list[str]:
    """The keys of every waiting message (waiting up to 0.5 s for the first)."""
    keys: list[str] = []
    message = pubsub.get_message(timeout=0.5)
    while message is not None and len(keys) < _BATCH:
        data = message.get("data")
        if isinstance(data, str) and data[:2] in ("p ", "b "):
            keys.append(data)
        message = pubsub.get_message(timeout=0)
    return keys


def _encode(binding: Binding) -> str:
    """``since<TAB>nas<TAB>subscriber``: the ID last, so it may hold any character."""
    return f"{binding.since!r}\t{binding.nas}\t{binding.subscriber}"


def _binding(value: str) -> Binding | None:
    """Decoded without JSON: a million of these are read at every start."""
    since, _, rest = value.partition("\t")
    nas, _, subscriber = rest.partition("\t")
    try:
        return Binding(subscriber, float(since), nas) if subscriber else None
    except ValueError:
        return None  # a foreign or damaged value binds nobody


class _unavailable:  # noqa: N801 - used as a context manager, reads as a clause
    """Turn redis-py's connection and protocol errors into StoreUnavailable."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if isinstance(exc, redis.RedisError | OSError):
            raise StoreUnavailable(f"subscriber store {_safe(self.url)}: {exc}") from None


def _safe(url: str) -> str:
    """The URL without a password (it may be in it: redis://:secret@host)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
