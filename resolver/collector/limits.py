"""Failed pushes are rate limited per source address and per site: 429 with Retry-After.

The push API needs no password (the signatures authenticate it), so anybody can POST. A good
push costs little; what an unenrolled or broken client can do is fail over and over, each
failure costing signature checks and a database transaction. So only failures spend tokens:

1. Every source address (an IPv6 address by its /64, one subscriber's prefix) has a bucket of
   failures. Empty, every API request from it is answered 429 before any work is done.
2. Every enrolled site has a bigger bucket too, spent by failures from any address. When it is
   empty, only addresses that failed recently wait: junk from elsewhere cannot silence a school
   whose own pushes succeed, and a site under attack from many addresses has its cost bounded.

Both tables hold at most ``max_keys`` buckets; the bucket that failed longest ago goes first,
and a full bucket is forgotten, so memory stays bounded whatever the traffic. Pure: the clock
is passed in, counts are kept here for the metrics page and no address is ever counted.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass

from resolver.errors import LachanError


@dataclass(frozen=True, slots=True)
class Rate:
    """``burst`` failures at once, then one more every ``seconds`` seconds."""

    burst: int
    seconds: float


ADDRESS_RATE = Rate(burst=20, seconds=30.0)  # a pusher fails a few times an hour at most
SITE_SCALE = 6  # a site's bucket: six times the burst, refilled six times as fast
MAX_KEYS = 50_000  # ~200 bytes a bucket: 10 MB at worst per table


def parse_rate(text: str, flag: str = "--failed-pushes") -> Rate:
    """``N/SECONDS`` (``20/30``: twenty failures at once, then one every 30 s)."""
    burst, _, seconds = text.partition("/")
    try:
        rate = Rate(int(burst), float(seconds.removesuffix("s")))
    except ValueError:
        rate = Rate(0, 0)
    if rate.burst < 1 or not 0 < rate.seconds < 86400:
        raise LachanError(f"{flag} {text!r}: expected N/SECONDS, e.g. 20/30")
    return rate


class Buckets:
    """Token buckets of allowed failures, one per key, at most ``max_keys`` of them."""

    def __init__(self, rate: Rate, max_keys: int = MAX_KEYS) -> None:
        self.rate, self.max_keys = rate, max_keys
        self._tokens: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def __len__(self) -> int:
        return len(self._tokens)

    def _level(self, key: str, now: float) -> float | None:
        """Tokens left now; None (and the bucket forgotten) when it has refilled."""
        entry = self._tokens.get(key)
        if entry is None:
            return None
        tokens = entry[0] + max(0.0, now - entry[1]) / self.rate.seconds
        if tokens >= self.rate.burst:
            del self._tokens[key]
            return None
        return tokens

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may fail again; 0 when it may now."""
        tokens = self._level(key, now)
        return 0.0 if tokens is None or tokens >= 1 else (1 - tokens) * self.rate.seconds

    def failed_recently(self, key: str, now: float) -> bool:
        return self._level(key, now) is not None

    def fail(self, key: str, now: float) -> None:
        """Spend one token of ``key`` (never below empty); the oldest bucket goes when full."""
        tokens = self._level(key, now)
        level = float(self.rate.burst) if tokens is None else tokens
        self._tokens[key] = (max(0.0, level - 1), now)
        self._tokens.move_to_end(key)
        while len(self._tokens) > self.max_keys:
            self._tokens.popitem(last=False)


def address_key(address: str | None) -> str:
    """The bucket of a source address: IPv4 as it is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "?"  # a Unix socket or no peer: one shared bucket
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


class PushGuard:
    """Both tables and the counts; the API asks ``check`` first and reports ``failed`` after."""

    def __init__(self, rate: Rate = ADDRESS_RATE, max_keys: int = MAX_KEYS) -> None:
        self.addresses = Buckets(rate, max_keys)
        self.sites = Buckets(Rate(rate.burst * SITE_SCALE, rate.seconds / SITE_SCALE), max_keys)
        self.failures: Counter[str] = Counter()  # kind of failure
        self.throttled: Counter[str] = Counter()  # "address" or "site"

    def check(self, address: str | None, site: str | None, now: float) -> int:
        """Whole seconds the client must wait before this request is served; 0 to serve it."""
        key = address_key(address)
        wait = self.addresses.wait(key, now)
        if wait:
            self.throttled["address"] += 1
            return math.ceil(wait)
        if site and self.addresses.failed_recently(key, now):
            wait = self.sites.wait(site, now)
            if wait:
                self.throttled["site"] += 1
                return math.ceil(wait)
        return 0

    def failed(self, address: str | None, site: str | None, kind: str, now: float) -> None:
        """A request that failed as ``kind``; ``site`` only when it is enrolled."""
        self.failures[kind] += 1
        self.addresses.fail(address_key(address), now)
        if site:
            self.sites.fail(site, now)
