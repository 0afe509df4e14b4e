"""Which profile a client gets: source CIDR (longest prefix), listener, trusted ECS, default."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from resolver.config_read import unknown_key
from resolver.errors import ConfigError
from resolver.policy.profile import Profile

V = TypeVar("V")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_ECS_FAMILY_BITS = {1: 32, 2: 128}
_V4_MAPPED = 0xFFFF << 32


class EcsError(ValueError):
    """A malformed EDNS Client Subnet option (RFC 7871): the server answers FORMERR."""


def parse_ecs(option_data: bytes) -> Network:
    """The client network carried by an ECS option's data (RFC 7871 section 6).

    Rejects an unknown FAMILY, a SOURCE PREFIX-LENGTH longer than the family's address, a
    non-zero SCOPE PREFIX-LENGTH (queries must send 0), an ADDRESS with more or fewer octets
    than the prefix needs, and address bits set beyond the prefix.
    """
    if len(option_data) < 4:
        raise EcsError(f"ECS option too short: {len(option_data)} bytes")
    family = int.from_bytes(option_data[0:2], "big")
    source, scope = option_data[2], option_data[3]
    bits = _ECS_FAMILY_BITS.get(family)
    if bits is None:
        raise EcsError(f"ECS family {family} unknown (1 = IPv4, 2 = IPv6)")
    if source > bits:
        raise EcsError(f"ECS source prefix /{source} longer than the address ({bits} bits)")
    if scope != 0:
        raise EcsError(f"ECS scope prefix must be 0 in a query, got {scope}")
    address = option_data[4:]
    if len(address) != (source + 7) // 8:
        raise EcsError(
            f"ECS address has {len(address)} octets, /{source} needs {(source + 7) // 8}"
        )
    value = int.from_bytes(address.ljust(bits // 8, b"\0"), "big")
    if value & ((1 << (bits - source)) - 1):
        raise EcsError(f"ECS address has bits set beyond /{source}")
    if family == 1:
        return ipaddress.IPv4Network((value, source))
    return ipaddress.IPv6Network((value, source))


def address_key(ip: str) -> tuple[int, int]:
    """(bits, integer) of an address; IPv4-mapped IPv6 counts as IPv4; OSError if malformed."""
    if ":" not in ip:
        return 32, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    value = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip.partition("%")[0]), "big")
    if value >> 32 == 0xFFFF:  # ::ffff:a.b.c.d from a dual-stack socket
        return 32, value & 0xFFFFFFFF
    return 128, value


@dataclass(frozen=True, slots=True)
class PrefixTable(Generic[V]):
    """Longest-prefix match on integers: one dict per prefix length, most specific first."""

    v4: tuple[tuple[int, int, dict[int, V]], ...]
    v6: tuple[tuple[int, int, dict[int, V]], ...]

    @classmethod
    def build(cls, entries: Mapping[Network, V]) -> PrefixTable[V]:
        """Index ``network → value``; a network given twice keeps the last value."""
        by_len: dict[tuple[int, int], dict[int, V]] = {}
        for network, value in entries.items():
            bits: int = network.max_prefixlen
            by_len.setdefault((bits, network.prefixlen), {})[int(network.network_address)] = value
        tables: dict[int, list[tuple[int, int, dict[int, V]]]] = {32: [], 128: []}
        for (bits, plen), table in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            mask = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
            tables[bits].append((plen, mask, table))
        return cls(tuple(tables[32]), tuple(tables[128]))

    def get(self, bits: int, value: int, max_prefix: int = 128) -> V | None:
        """The value of the longest prefix holding ``value`` no longer than ``max_prefix``."""
        for plen, mask, table in self.v4 if bits == 32 else self.v6:
            if plen <= max_prefix:
                hit = table.get(value & mask)
                if hit is not None:
                    return hit
        return None


@dataclass(frozen=True, slots=True)
class ClientMap:
    """Maps a query's client to a Profile; build with ``ClientMap.from_config``.

    Precedence: the most specific source CIDR, then the listener the query arrived on
    (address and port, then address alone), then the default. ECS replaces the source
    address only when the packet came from a trusted forwarder; a configured prefix longer
    than the ECS prefix cannot match, since the client may be anywhere in that subnet.
    """

    networks: PrefixTable[Profile]
    listeners: Mapping[tuple[str, int], Profile]
    listener_hosts: Mapping[str, Profile]
    default: Profile
    trusted_ecs: PrefixTable[bool]
    trusted_proxy: PrefixTable[bool]
    subscribers: Any = None  # a subscribers.view.SubscriberView in ISP subscriber mode

    def profile_for(
        self, client_ip: str, listener: tuple[str, int], ecs: Network | None = None
    ) -> Profile:
        """The profile for ``client_ip`` (a PROXY v2 source already resolved by the server)."""
        bits, value = address_key(client_ip)
        max_prefix = 128
        if ecs is not None and ecs.prefixlen and self.trusted_ecs.get(bits, value):
            bits, max_prefix = ecs.max_prefixlen, ecs.prefixlen
            value = int(ecs.network_address)
        elif self.subscribers is not None:  # an address bound to a subscriber line comes first
            profile = self.subscribers.profile_for(bits, value)
            if profile is not None:
                return profile
        profile = self.networks.get(bits, value, max_prefix)
        if profile is not None:
            return profile
        profile = self.listeners.get(listener) or self.listener_hosts.get(listener[0])
        return profile if profile is not None else self.default

    def explain(
        self, client_ip: str, listener: tuple[str, int], ecs: Network | None = None
    ) -> tuple[Profile, str]:
        """``profile_for`` with its reason in words (for ``lachan explain``, not the hot path)."""
        bits, value = address_key(client_ip)
        max_prefix, via = 128, f"client {client_ip}"
        if ecs is not None and ecs.prefixlen and self.trusted_ecs.get(bits, value):
            bits, value, max_prefix = ecs.max_prefixlen, int(ecs.network_address), ecs.prefixlen
            via = f"ECS {ecs} from trusted forwarder {client_ip}"
        elif ecs is not None:
            via += f" (ECS {ecs} ignored: not a trusted forwarder)"
        if max_prefix == 128 and self.subscribers is not None:
            bound = self.subscribers.explain(bits, value)
            if bound is not None:
                return bound[0], f"{via} {bound[1]}"
        for plen, mask, table in self.networks.v4 if bits == 32 else self.networks.v6:
            hit = table.get(value & mask) if plen <= max_prefix else None
            if hit is not None:
                return hit, f"{via} is in {_network_text(bits, value & mask, plen)}"
        if listener in self.listeners:
            return self.listeners[
                listener
            ], f"{via} asked listener {listener[0]} port {listener[1]}"
        if listener[0] in self.listener_hosts:
            return self.listener_hosts[listener[0]], f"{via} asked listener {listener[0]}"
        return self.default, f"{via} matches no network or listener: the default profile"

    def trusts_proxy(self, peer_ip: str) -> bool:
        """Whether PROXY v2 headers from ``peer_ip`` are believed (else they are not parsed)."""
        bits, value = address_key(peer_ip)
        return bool(self.trusted_proxy.get(bits, value))

    def trusts_ecs(self, peer_ip: str) -> bool:
        """Whether ECS options from ``peer_ip`` select the profile."""
        bits, value = address_key(peer_ip)
        return bool(self.trusted_ecs.get(bits, value))

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any], profiles: Mapping[str, Profile], source: str
    ) -> ClientMap:
        """Build from a ``clients:`` mapping; raise ConfigError with every problem at once.

        ``default: <profile>``, ``networks: {CIDR: profile}``, ``listeners: {"addr" or
        "addr:port" or "[v6]:port": profile}``, ``trusted_ecs: [CIDR]``,
        ``trusted_proxy: [CIDR]``; ``source`` names the file in messages.
        """
        problems: list[str] = []
        known = {"default", "networks", "listeners", "trusted_ecs", "trusted_proxy"}
        problems += [f"{source}: clients.{k}: {unknown_key(str(k), known)}"
                     for k in sorted(set(section) - known, key=str)]  # fmt: skip

        def profile(key: str, name: Any) -> Profile | None:
            if name in profiles:
                return profiles[name]
            problems.append(f"{source}: clients.{key}: unknown profile {name!r}")
            return None

        default = profile("default", section.get("default", "under16"))
        nets = _networks(section.get("networks") or {}, "networks", source, problems)
        mapped = {net: p for net, name in nets.items() if (p := profile(f"networks.{net}", name))}
        listeners, hosts = _listeners(section.get("listeners") or {}, source, problems, profile)
        ecs = _trusted(section.get("trusted_ecs") or [], "trusted_ecs", source, problems)
        proxy = _trusted(section.get("trusted_proxy") or [], "trusted_proxy", source, problems)
        if problems or default is None:
            raise ConfigError(problems)
        return cls(PrefixTable.build(mapped), listeners, hosts, default, ecs, proxy)


def _network_text(bits: int, value: int, plen: int) -> str:
    if bits == 32:
        return str(ipaddress.IPv4Network((value, plen)))
    return str(ipaddress.IPv6Network((value, plen)))


def _network(text: Any, key: str, source: str, problems: list[str]) -> Network | None:
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError as exc:
        problems.append(f"{source}: {key}: {exc}")
        return None


def _networks(raw: Any, key: str, source: str, problems: list[str]) -> dict[Network, Any]:
    if not isinstance(raw, dict):
        problems.append(f"{source}: clients.{key}: expected a mapping CIDR: profile")
        return {}
    out: dict[Network, Any] = {}
    for text, value in raw.items():
        network = _network(text, f"clients.{key}.{text}", source, problems)
        if network is not None:
            out[network] = value
    return out


def _trusted(raw: Any, key: str, source: str, problems: list[str]) -> PrefixTable[bool]:
    if not isinstance(raw, list):
        problems.append(f"{source}: clients.{key}: expected a list of CIDRs")
        return PrefixTable((), ())
    nets = (_network(t, f"clients.{key}[{i}]", source, problems) for i, t in enumerate(raw))
    return PrefixTable.build({n: True for n in nets if n is not None})


def _listener_key(text: str) -> tuple[str, int | None]:
    """``"192.0.2.1"``, ``"192.0.2.1:53"``, ``"2001:db8::1"`` or ``"[2001:db8::1]:53"``."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        host = host.rstrip("]")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    address = str(ipaddress.ip_address(host))
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"invalid port {port!r}")
    return address, int(port) if port else None


def _listeners(raw: Any, source: str, problems: list[str], profile: Any) -> tuple[dict, dict]:
    exact: dict[tuple[str, int], Profile] = {}
    hosts: dict[str, Profile] = {}
    if not isinstance(raw, dict):
        problems.append(f"{source}: clients.listeners: expected a mapping address: profile")
        return exact, hosts
    for text, name in raw.items():
        try:
            address, port = _listener_key(str(text))
        except ValueError as exc:
            problems.append(f"{source}: clients.listeners.{text}: {exc}")
            continue
        chosen = profile(f"listeners.{text}", name)
        if chosen is not None and port is None:
            hosts[address] = chosen
        elif chosen is not None and port is not None:
            exact[(address, port)] = chosen
    return exact, hosts
