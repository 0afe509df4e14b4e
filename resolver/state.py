"""The serving snapshot: profiles, client map, blocklist index and prebuilt answers.

A reload or a list refresh builds a whole new ``ServingState`` off the hot path and swaps one
reference; queries in flight finish on the state they started with.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from ._nametable import Table
from .allows import AllowStore
from .allows import apply as apply_allows
from .blocks import BlockAnswers, block_page_rdata
from .config import Config
from .console.settings import block_page_address, never_categories, unaddressed_block_pages
from .coverage.canary import CanaryStatus, format_canary
from .errors import ConfigError, ListError
from .fastpath import static_table
from .lists.catalogue import load_for
from .lists.index import Index, open_index
from .lists.match import ListMatch
from .lists.snapshot import current_index, open_current
from .policy.clients import ClientMap
from .policy.loader import load_profiles
from .policy.profile import Profile
from .settings import default_state_dir
from .shipped import shipped_dir

log = logging.getLogger(__name__)

BUNDLED_POLICIES = shipped_dir("policies")


class EmptyIndex:
    """Stands in when lists are off: nothing is listed."""

    categories: tuple[str, ...] = ()

    def lookup(self, name: str) -> ListMatch | None:
        return None

    @property
    def shared(self) -> EmptyIndex:
        return self  # the serving path's lookup (Index.shared) finds nothing either

    classify = None  # no fast path without lists


@dataclass(frozen=True)
class ServingState:
    """Everything a query's decision reads, immutable once built."""

    profiles: dict[str, Profile]
    clients: ClientMap
    index: Index | EmptyIndex
    index_digest: str
    index_built_at: float
    policy_digest: str
    blocks: BlockAnswers
    site_id: str
    site_kind: str
    # per profile: its static names for the blocked-name fast path (None: path off)
    static_tables: dict[str, Table | None] = field(default_factory=dict)

    def canary_texts(self, profile: Profile, now: float) -> tuple[str, ...]:
        status = CanaryStatus(
            site=self.site_id,
            profile=profile.name,
            index=self.index_digest or "none",
            index_age=max(0, int(now - self.index_built_at)) if self.index_built_at else 0,
            version=__version__,
            kind=self.site_kind,
        )
        return format_canary(status)


Policies = tuple[dict[str, Profile], ClientMap, str]  # what load_policies returns


def load_policies(config: Config, connect: bool = True) -> Policies:
    """Profiles, the client map and a digest of the policy files; ConfigError if invalid.

    ``connect`` False (check-config) validates without reading the subscriber store."""
    directory = config.policies_dir or BUNDLED_POLICIES
    if config.policies_dir is not None and not config.policies_dir.is_dir():
        raise ConfigError(f"{config.source}: policies.dir: folder {directory} does not exist")
    local = config.policies_local_dir
    if local is not None and not local.is_dir():
        raise ConfigError(f"{config.source}: policies.local_dir: folder {local} does not exist")
    profiles = load_profiles(directory, config.site.timezone, local)
    if not profiles:
        raise ConfigError(f"{directory}: no profile (*.yaml) found")
    unaddressed = [] if config.console else unaddressed_block_pages(profiles)
    if unaddressed:  # no console to take the block page's address from
        raise ConfigError(unaddressed)
    profiles = with_temporary_allows(config, profiles)
    clients = ClientMap.from_config(config.clients, profiles, config.source)
    if config.subscribers is not None:
        from .subscribers.view import attach

        clients = attach(clients, profiles, config, connect)
    digest = hashlib.sha256()
    for folder in (Path(directory), *((Path(local),) if local else ())):
        for path in sorted(folder.glob("*.yaml")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(repr(sorted(config.clients.items())).encode())
    return profiles, clients, "sha256:" + digest.hexdigest()[:16]


def allows_store(config: Config) -> AllowStore:
    """The temporary allows of this config's site (in the lists' state folder)."""
    return AllowStore(Path(config.lists.state_dir or default_state_dir()))


def with_temporary_allows(config: Config, profiles: dict[str, Profile]) -> dict[str, Profile]:
    """Profiles with the teachers' temporary allows in force now (resolver/allows.py).

    An allows file this user cannot read is logged and skipped: the profiles themselves
    still protect, and a teacher's exception must never stop the filter from starting.
    """
    store = allows_store(config)
    if not os.access(store.path.parent, os.X_OK):
        return profiles  # none yet, or not this user's folder (check-config reports it)
    try:
        allows = store.load()
    except ConfigError as exc:
        log.error("temporary allows not applied: %s", exc)
        return profiles
    return apply_allows(profiles, allows, time.time(), never_categories(config.console))


def load_index(config: Config, compile_if_needed: bool = True) -> Index | EmptyIndex:
    """The compiled index for the config's catalogue, compiling it once when needed."""
    if not config.lists.enabled:
        return EmptyIndex()
    state_dir = config.lists.state_dir or default_state_dir()
    catalogue = load_for(config.lists, config.source)
    started = time.monotonic()
    if compile_if_needed:
        index = open_current(catalogue, state_dir)
    else:
        found = current_index(state_dir)
        if found is None:
            raise ListError(f"{state_dir}: no compiled index (run `lachan lists compile`)")
        index = open_index(found)
    log.info(
        "blocklist index %s: %d names, ready in %.2f s",
        index.info.path.name,
        len(index),
        time.monotonic() - started,
    )
    return index


def build_state(
    config: Config, index: Index | EmptyIndex | None = None, policies: Policies | None = None
) -> ServingState:
    """A complete serving snapshot; raises ConfigError or ListError and changes nothing.

    ``policies``: load_policies(config) when the caller has just loaded them (`serve` checks
    them before binding), so a start compiles the profiles once (~8 ms for the shipped ones).
    """
    profiles, clients, policy_digest = policies or load_policies(config)
    if index is None:
        index = load_index(config)
    console_page = block_page_address(config.console)  # profiles naming none point there
    pages = {
        name: block_page_rdata(
            *(
                (p.answer.address_v4, p.answer.address_v6)
                if p.answer.address_v4 or p.answer.address_v6
                else console_page
            )
        )
        for name, p in profiles.items()
    }
    info = getattr(index, "info", None)
    return ServingState(
        profiles=profiles,
        clients=clients,
        index=index,
        index_digest=f"sha256:{info.key[:16]}" if info is not None else "",
        index_built_at=info.built_at if info is not None else 0.0,
        policy_digest=policy_digest,
        blocks=BlockAnswers(config.serve.udp_size, pages),
        site_id=config.site.id,
        site_kind=config.site.kind,
        static_tables={
            name: static_table(p.rules.exact, p.rules.wild) for name, p in profiles.items()
        },
    )
