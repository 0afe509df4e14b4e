"""The settings of the access list, the rate limits and the query log: read and checked by
config.py, imported by the runtime modules that apply them (acl.py, ratelimit.py, querylog.py).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from .config_read import unknown_key
from .errors import ConfigError

# Served unless the operator says otherwise: networks that cannot be spoofed from the open
# Internet at scale, i.e. the ones an open resolver would be abused from are all excluded.
DEFAULT_ALLOW: tuple[str, ...] = (
    "127.0.0.0/8",  # loopback
    "::1/128",
    "10.0.0.0/8",  # RFC 1918
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",  # RFC 6598 shared address space: ISP subscribers behind CGNAT
    "169.254.0.0/16",  # link-local
    "fe80::/10",
    "fc00::/7",  # RFC 4193 unique local
)


# -- the access list (acl:) ---------------------------------------------------------------
class AclAction(enum.Enum):
    """What a client outside the access list gets."""

    REFUSE = "refuse"  # REFUSED + EDE 18 and its text: honest, at most 36 bytes over the query
    DROP = "drop"  # silence: nothing at all for scanners and spoofed floods


@dataclass(frozen=True, slots=True)
class AclConfig:
    """The ``acl:`` section: networks served, networks refused, and how to refuse."""

    allow: tuple[str, ...] = DEFAULT_ALLOW
    deny: tuple[str, ...] = ()
    action: AclAction = AclAction.REFUSE


def acl_config(section: Mapping[str, Any] | None, source: str = "lachan.yaml") -> AclConfig:
    """Validate the ``acl:`` mapping of a config file; errors name the file and key."""
    section = section or {}
    problems = [f"{source}: acl.{key}: {unknown_key(str(key), set(_ACL_KEYS))}"
                for key in section if key not in _ACL_KEYS]  # fmt: skip
    lists: dict[str, tuple[str, ...]] = {}
    for key, default in (("allow", DEFAULT_ALLOW), ("deny", ())):
        value = section.get(key, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            problems.append(f"{source}: acl.{key}: expected a list of networks like 10.0.0.0/8")
            continue
        for index, cidr in enumerate(value):
            try:
                ipaddress.ip_network(cidr.split("%", 1)[0], strict=False)
            except ValueError:
                problems.append(f"{source}: acl.{key}[{index}]: {cidr!r} is not a network")
        lists[key] = tuple(value)
    try:
        action = AclAction(section.get("action", "refuse"))
    except ValueError:
        problems.append(f"{source}: acl.action: expected 'refuse' or 'drop'")
        action = AclAction.REFUSE
    if problems:
        raise ConfigError(problems)
    return AclConfig(allow=lists["allow"], deny=lists["deny"], action=action)


_ACL_KEYS = frozenset({"allow", "deny", "action"})


# -- the rate limits (ratelimit:) ----------------------------------------------------------
class LimitAction(enum.Enum):
    """What a client over its rate gets."""

    TRUNCATE = "truncate"  # TC=1 (slipped, see RateLimitConfig.slip): a real client retries on TCP
    DROP = "drop"


class AnyMode(enum.Enum):
    """How UDP queries of type ANY (255) are answered."""

    HINFO = "hinfo"  # RFC 8482 section 4.2: one synthesised HINFO, no upstream query
    REFUSE = "refuse"
    FORWARD = "forward"  # no cap beyond the rate limit


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket for every prefix of this length: ``rate`` queries/s, ``burst`` at once."""

    prefix: int
    rate: float
    burst: float


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """The ``ratelimit:`` section.

    Defaults suit a school LAN or an ISP's subscriber pool where one address is one home:
    a /32 (or /64) may average 200 q/s, its /24 (or /56) 2000 q/s, so one flooding host
    takes at most a tenth of its neighbours' share. Raise them for clients behind NAT.
    """

    ipv4: tuple[Limit, ...] = (Limit(32, 200, 1000), Limit(24, 2000, 5000))
    ipv6: tuple[Limit, ...] = (Limit(64, 200, 1000), Limit(56, 2000, 5000))
    action: LimitAction = LimitAction.TRUNCATE
    # As BIND's RRL "slip": with TRUNCATE, one limited query in ``slip`` gets TC=1 and the
    # rest are dropped, so a spoofed flood reflects at most 1/slip of itself at its victim.
    slip: int = 2
    any_mode: AnyMode = AnyMode.HINFO
    max_buckets: int = 200_000
    sweep_interval: float = 60.0
    tcp_per_client: int = 20
    tcp_total: int = 2000


_RATELIMIT_KEYS = frozenset(
    {"ipv4", "ipv6", "action", "slip", "any", "max_buckets", "sweep_interval", "tcp"}
)


def _limits(value: Any, key: str, bits: int, source: str, problems: list[str]) -> tuple[Limit, ...]:
    if not isinstance(value, list) or not value:
        problems.append(f"{source}: ratelimit.{key}: expected a list of {{prefix, rate, burst}}")
        return ()
    found = []
    for index, item in enumerate(value):
        where = f"{source}: ratelimit.{key}[{index}]"
        try:
            lim = Limit(int(item["prefix"]), float(item["rate"]), float(item["burst"]))
        except (KeyError, TypeError, ValueError):
            problems.append(f"{where}: expected prefix, rate and burst numbers")
            continue
        if not 0 < lim.prefix <= bits or lim.rate <= 0 or lim.burst < 1:
            problems.append(f"{where}: prefix must be 1..{bits}, rate > 0, burst >= 1")
            continue
        found.append(lim)
    return tuple(found)


def ratelimit_config(
    section: Mapping[str, Any] | None, source: str = "lachan.yaml"
) -> RateLimitConfig:
    """Validate the ``ratelimit:`` mapping; errors name the file and key."""
    section, base = section or {}, RateLimitConfig()
    problems = [
        f"{source}: ratelimit.{key}: {unknown_key(str(key), set(_RATELIMIT_KEYS))}"
        for key in section
        if key not in _RATELIMIT_KEYS
    ]
    values: dict[str, Any] = {}
    for key, bits in (("ipv4", 32), ("ipv6", 128)):
        if key in section:
            values[key] = _limits(section[key], key, bits, source, problems)
    for key, enum_type, attr in (("action", LimitAction, "action"), ("any", AnyMode, "any_mode")):
        if key in section:
            try:
                values[attr] = enum_type(section[key])
            except ValueError:
                names = " or ".join(repr(m.value) for m in enum_type)
                problems.append(f"{source}: ratelimit.{key}: expected {names}")
    numbers = {"slip": ("slip", 0), "max_buckets": ("max_buckets", 16)}
    numbers["sweep_interval"] = ("sweep_interval", 1)
    for key, (attr, low) in numbers.items():
        if key in section:
            value = section[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
                problems.append(f"{source}: ratelimit.{key}: expected a number >= {low}")
            else:
                values[attr] = type(getattr(base, attr))(value)
    tcp = section.get("tcp", {})
    for key in ("per_client", "total"):
        value = tcp.get(key, getattr(base, f"tcp_{key}")) if isinstance(tcp, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{source}: ratelimit.tcp.{key}: expected an integer >= 1")
        else:
            values[f"tcp_{key}"] = value
    if problems:
        raise ConfigError(problems)
    return RateLimitConfig(**values)


# -- the query log (querylog:) -------------------------------------------------------------
ROTATE_MODES = ("daily", "size")
CLIENT_MODES = ("truncate", "hash")


@dataclass(frozen=True, slots=True)
class QueryLogConfig:
    """Where and how to log; validated on construction (a user mistake is a ConfigError)."""

    path: Path
    rotate: str = "daily"
    max_bytes: int = 64 * 1024 * 1024
    retention_days: int = 7
    client: str = "truncate"
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    tz: tzinfo = UTC
    max_buffer: int = 65536  # records awaiting a flush; more are dropped and counted

    def __post_init__(self) -> None:
        problems = []
        if self.rotate not in ROTATE_MODES:
            problems.append(f"querylog.rotate: {self.rotate!r} is not one of daily, size")
        if self.client not in CLIENT_MODES:
            problems.append(f"querylog.client: {self.client!r} is not one of truncate, hash")
        if not 1 <= self.retention_days <= 3650:
            problems.append(f"querylog.retention_days: {self.retention_days} is not 1..3650")
        if not 0 <= self.ipv4_prefix <= 32 or not 0 <= self.ipv6_prefix <= 128:
            problems.append("querylog.ipv4_prefix/ipv6_prefix: out of range (0..32, 0..128)")
        if self.max_bytes < 4096 or self.max_buffer < 1:
            problems.append("querylog.max_bytes must be >= 4096 and max_buffer >= 1")
        if problems:
            raise ConfigError(problems)
