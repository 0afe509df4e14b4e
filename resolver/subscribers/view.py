"""How the client map asks the replica: the subscriber-chosen profile of an address."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..errors import ConfigError
from ..policy.profile import Profile
from .replica import Replica

if TYPE_CHECKING:
    from ..config import Config
    from ..policy.clients import ClientMap
    from .settings import SubscriberSettings

log = logging.getLogger(__name__)
_REPLICAS: dict[str, Replica] = {}  # one per store and process: reloads keep it, never reload it


@dataclass(frozen=True, slots=True)
class SubscriberView:
    """The replica read with the profiles of one serving snapshot."""

    replica: Replica
    profiles: Mapping[str, Profile]
    default: Profile
    timezone: str = "Asia/Ho_Chi_Minh"

    def profile_for(self, bits: int, value: int) -> Profile | None:
        """The profile of an address bound to a subscriber; None when it is bound to none."""
        subscriber = self.replica.subscriber(bits, value)
        if subscriber is None:
            return None
        name = self.replica.profiles.get(subscriber)
        return self.profiles.get(name, self.default) if name else self.default

    def explain(self, bits: int, value: int) -> tuple[Profile, str] | None:
        """``profile_for`` in words, without the subscriber ID (this text may be shared)."""
        binding = self.replica.binding(bits, value)
        if binding is None:
            return None
        profile = self.profile_for(bits, value)
        assert profile is not None
        opted = binding.subscriber in self.replica.profiles
        whose = "an opted-in subscriber" if opted else "a subscriber with no profile set"
        if not binding.since:  # a serving replica keeps no times: `subscribers where` has it
            return profile, f"is bound to {whose} (since when: lachan subscribers where)"
        since = datetime.fromtimestamp(binding.since, ZoneInfo(self.timezone))
        return profile, f"is bound to {whose} since {since:%Y-%m-%d %H:%M:%S %Z}"


def process_replica(settings: SubscriberSettings) -> Replica:
    """This process's replica of ``settings.store``, loaded on first use."""
    replica = _REPLICAS.get(settings.store)
    if replica is None:
        from .store import StoreUnavailable, open_store

        replica = _REPLICAS[settings.store] = Replica(details=False)
        try:
            store = open_store(settings.store)
            replica.replace(*store.load())
            replica.version = store.loaded_version
        except StoreUnavailable as exc:
            log.error("subscriber store unreachable, starting with no bindings: %s", exc)
    return replica


def attach(
    clients: ClientMap, profiles: Mapping[str, Profile], config: Config, connect: bool = True
) -> ClientMap:
    """The client map with subscribers consulted first and their default as the default;
    ``connect`` False checks the settings without reading the store (check-config)."""
    settings = config.subscribers
    assert settings is not None
    default = profiles.get(settings.default)
    if default is None:
        known = ", ".join(sorted(profiles))
        raise ConfigError(
            f"{config.source}: subscribers.default: unknown profile {settings.default!r} "
            f"(known: {known})"
        )
    if not connect:
        return dataclasses.replace(clients, default=default)
    view = SubscriberView(process_replica(settings), profiles, default, config.site.timezone)
    return dataclasses.replace(clients, default=default, subscribers=view)
