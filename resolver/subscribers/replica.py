"""The in-memory replica every process answers from: subscriber → profile, address → subscriber.

Kept pure (no I/O): the store's watcher feeds it updates, and each update says which client
addresses it may have changed, so the resolver drops only their state. An IPv4 client is one
dict lookup; IPv6 is a longest-prefix match over the few prefix lengths in use (/128 for
Framed-IP, /64 and /56 or so for Framed-IPv6-Prefix and Delegated-IPv6-Prefix).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class Binding(NamedTuple):
    """Who holds an address now: the subscriber, since when (Unix time), which NAS said so."""

    subscriber: str
    since: float
    nas: str


# ("profile", subscriber, name or None) | ("binding", prefix text, Binding or None)
Update = tuple[str, str, "str | Binding | None"]


def prefix_key(text: str) -> tuple[int, int, int]:
    """(bits, prefix length, network integer) of ``"192.0.2.7"`` or ``"2001:db8::/56"``.

    inet_pton, not ipaddress: an initial load parses a million of these (about 10x faster).
    ValueError for anything that is not an address with an optional /length."""
    address, _, length = text.partition("/")
    family, bits = (socket.AF_INET6, 128) if ":" in address else (socket.AF_INET, 32)
    try:
        value = int.from_bytes(socket.inet_pton(family, address), "big")
    except OSError:
        raise ValueError(f"not an address: {address!r}") from None
    plen = int(length) if length else bits
    if not 0 <= plen <= bits:
        raise ValueError(f"prefix length out of range: /{plen}")
    return bits, plen, value & (((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1))


def canonical_prefix(text: str) -> str:
    """The one spelling a prefix is stored under (host bits cleared, always with /len)."""
    return str(ipaddress.ip_network(text, strict=False))


@dataclass
class Affected:
    """Client addresses whose per-client state an update invalidates."""

    addresses: set[str] = field(default_factory=set)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    subscribers: set[str] = field(default_factory=set)
    everything: bool = False

    def __bool__(self) -> bool:
        return bool(self.addresses or self.networks or self.subscribers or self.everything)


# What a table holds per address: the whole Binding, or (``details=False``) only the ID.
Held = Binding | str


class Replica:
    """Subscriber profiles and address bindings; mutated only on the owning event loop.

    ``details=False`` (a serving process) keeps only the subscriber ID per address: choosing
    a profile needs nothing else, and a binding then costs about 100 bytes less (a million
    bindings per process, in every worker). ``binding()`` reports ``since`` 0 and no NAS then.
    """

    def __init__(self, details: bool = True) -> None:
        self.details = details
        self.profiles: dict[str, str] = {}
        self.v4: dict[int, Held] = {}  # Framed-IP-Address: the hot path's one lookup
        self.v6: dict[int, dict[int, Held]] = {}  # prefix length -> network -> binding
        self._v6_order: tuple[tuple[int, int, dict[int, Held]], ...] = ()
        self.version: object = None  # the store's version this replica equals, when known

    def binding(self, bits: int, value: int) -> Binding | None:
        """The binding of an address given as ``policy.clients.address_key`` returns it."""
        return _binding(self._held_at(bits, value))

    def subscriber(self, bits: int, value: int) -> str | None:
        """The subscriber ID bound to an address (the hot path: no Binding is built)."""
        held = self._held_at(bits, value)
        return held if held is None or isinstance(held, str) else held.subscriber

    def _held_at(self, bits: int, value: int) -> Held | None:
        if bits == 32:
            return self.v4.get(value)
        for _plen, mask, table in self._v6_order:
            hit = table.get(value & mask)
            if hit is not None:
                return hit
        return None

    def bindings_count(self) -> int:
        return len(self.v4) + sum(len(t) for t in self.v6.values())

    def profile_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in self.profiles.values():
            counts[name] = counts.get(name, 0) + 1
        return counts

    def apply(self, updates: Iterable[Update]) -> Affected:
        """Apply store updates; returns what they invalidate."""
        affected = Affected()
        for kind, key, value in updates:
            if kind == "profile":
                self._set_profile(key, value if isinstance(value, str) else None, affected)
            else:
                self._set_binding(key, value if isinstance(value, Binding) else None, affected)
        self._reorder()
        return affected

    def replace(self, profiles: Mapping[str, str], bindings: Mapping[str, Binding]) -> Affected:
        """Become exactly the store's state (initial load, or a resync after an outage)."""
        if not self.profiles and not self.bindings_count():
            return self._load(profiles, bindings)
        return self.apply(self.diff(profiles, bindings))

    def diff(self, profiles: Mapping[str, str], bindings: Mapping[str, Binding]) -> list[Update]:
        """The updates that would make this replica the store's state (reads only)."""
        updates: list[Update] = [
            ("profile", s, p) for s, p in profiles.items() if self.profiles.get(s) != p
        ]
        updates += [("profile", s, None) for s in self.profiles if s not in profiles]
        current = dict(self._held_items())
        held = self._held
        updates += [("binding", k, b) for k, b in bindings.items() if current.get(k) != held(b)]
        updates += [("binding", k, None) for k in current if k not in bindings]
        return updates

    def _load(self, profiles: Mapping[str, str], bindings: Mapping[str, Binding]) -> Affected:
        """The initial load: straight into the tables (a million entries in seconds).

        A bound subscriber's ID is one string object in both tables, shared through a map
        that lives only during the load: ``sys.intern`` would share it too, but its table
        keeps an entry per ID for the process's life (31 bytes each at a million)."""
        intern = sys.intern
        self.profiles = {s: intern(p) for s, p in profiles.items()}
        ids = {s: s for s in self.profiles}
        details, v4, v6 = self.details, self.v4, self.v6
        for prefix, b in bindings.items():
            bits, plen, value = prefix_key(prefix)
            if bits == 32 and plen != 32:
                continue
            table = v4 if bits == 32 else v6.setdefault(plen, {})
            subscriber = ids.get(b.subscriber, b.subscriber)
            table[value] = Binding(subscriber, b.since, intern(b.nas)) if details else subscriber
        self._reorder()
        return Affected(everything=True)

    def _held(self, b: Binding) -> Held:
        """What the table keeps: the ID string as given; the NAS string interned (a few
        NAS addresses serve a million lines)."""
        if not self.details:
            return b.subscriber
        return Binding(b.subscriber, b.since, sys.intern(b.nas))

    def items(self) -> Iterable[tuple[str, Binding]]:
        """Every binding with its canonical prefix text."""
        for prefix, held in self._held_items():
            yield prefix, _binding(held)  # type: ignore[misc]

    def _held_items(self) -> Iterable[tuple[str, Held]]:
        for value, held in self.v4.items():
            yield f"{_text(32, value)}/32", held
        for plen, table in self.v6.items():
            for value, held in table.items():
                yield f"{_text(128, value)}/{plen}", held

    def _set_profile(self, subscriber: str, name: str | None, affected: Affected) -> None:
        if self.profiles.get(subscriber) == name:
            return
        if name is None:
            self.profiles.pop(subscriber, None)
        else:  # the name interned: a million subscribers share a few profile names
            self.profiles[subscriber] = sys.intern(name)
        affected.subscribers.add(subscriber)

    def _set_binding(self, prefix: str, binding: Binding | None, affected: Affected) -> None:
        bits, plen, value = prefix_key(prefix)
        if bits == 32 and plen != 32:
            return  # IPv4 subscribers are single addresses (Framed-IP-Address)
        table = self.v4 if bits == 32 else self.v6.setdefault(plen, {})
        new = None if binding is None else self._held(binding)
        if table.get(value) == new:
            return
        if new is None:
            del table[value]
        else:
            table[value] = new
        if plen == bits:
            affected.addresses.add(_text(bits, value))
        else:
            affected.networks.append(ipaddress.ip_network((value, plen)))

    def _reorder(self) -> None:
        for plen in [p for p, t in self.v6.items() if not t]:
            del self.v6[plen]
        order = []
        for plen in sorted(self.v6, reverse=True):
            mask = ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)
            order.append((plen, mask, self.v6[plen]))
        self._v6_order = tuple(order)


def _text(bits: int, value: int) -> str:
    """An address as a socket reports it (the client tables' keys)."""
    if bits == 32:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def _binding(held: Held | None) -> Binding | None:
    if held is None or isinstance(held, Binding):
        return held
    return Binding(held, 0.0, "")
