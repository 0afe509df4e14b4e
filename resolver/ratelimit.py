"""Abuse limits: token buckets per client prefix, the ANY cap, TCP connection caps."""

from __future__ import annotations

import enum
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from resolver import reply
from resolver.settings_limits import AnyMode, LimitAction, RateLimitConfig
from resolver.wire import REFUSED, Query


class Verdict(enum.Enum):
    """The rate limiter's answer for one query."""

    PASS = "pass"
    DROP = "drop"
    TRUNCATE = "truncate"


@dataclass(slots=True)
class RateLimitStats:
    """Plain counters for metrics (never a client address)."""

    dropped: int = 0
    truncated: int = 0
    evicted: int = 0
    sweeps: int = 0


def prefix_keys(ip: str, config: RateLimitConfig) -> list[tuple[int, int, int]] | None:
    """The (family, prefix length, masked address) of every bucket ``ip`` draws from."""
    try:
        raw = socket.inet_pton(socket.AF_INET, ip)
    except OSError:
        try:
            raw = socket.inet_pton(socket.AF_INET6, ip.split("%", 1)[0])
        except OSError:
            return None
        if raw[:12] == b"\0" * 10 + b"\xff\xff":
            raw = raw[12:]  # IPv4-mapped: the same client as its IPv4 spelling
    value, bits = int.from_bytes(raw, "big"), len(raw) * 8
    limits = config.ipv4 if bits == 32 else config.ipv6
    return [(bits, lim.prefix, value >> (bits - lim.prefix)) for lim in limits]


class RateLimiter:
    """Token buckets per client prefix, in bounded memory.

    A repeat client costs one dict lookup (address -> its buckets) plus arithmetic per
    bucket. Buckets are ``[tokens, last_refill, rate, burst]`` lists, mutated in place.

    Memory bound: at most ``max_buckets`` buckets and as many memoised addresses (each
    bucket ~200 bytes with its key, so ~40 MB at the default 200,000). Every
    ``sweep_interval`` seconds, buckets idle long enough to have refilled are deleted:
    a full bucket and a missing one behave the same, so this sweep changes no verdict.
    If the table is still full (a spray of spoofed prefixes), the oldest-created quarter
    is evicted and counted in ``stats.evicted``.
    """

    def __init__(
        self,
        config: RateLimitConfig = RateLimitConfig(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.stats = RateLimitStats()
        self._clock = clock
        self._buckets: dict[tuple[int, int, int], list[float]] = {}
        self._clients: dict[str, tuple[list[float], ...]] = {}
        self._limits = {(32, lim.prefix): lim for lim in config.ipv4}
        self._limits.update({(128, lim.prefix): lim for lim in config.ipv6})
        self._next_sweep = clock() + config.sweep_interval
        self._limited = 0

    def check(self, ip: str, now: float | None = None) -> Verdict:
        """May this query from ``ip`` be answered now? Consumes a token if so."""
        if now is None:
            now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        buckets = self._clients.get(ip)
        if buckets is None:
            buckets = self._attach(ip, now)
        allowed = True
        for bucket in buckets:
            elapsed = now - bucket[1]
            if elapsed > 0:
                tokens = bucket[0] + elapsed * bucket[2]
                bucket[0] = tokens if tokens < bucket[3] else bucket[3]
                bucket[1] = now
            if bucket[0] < 1.0:
                allowed = False
        if allowed:
            # Only a served query spends tokens: a host over its /32 limit stops draining
            # the /24 bucket its neighbours share.
            for bucket in buckets:
                bucket[0] -= 1.0
            return Verdict.PASS
        return self._over_limit()

    def _over_limit(self) -> Verdict:
        cfg = self.config
        if cfg.action is LimitAction.TRUNCATE and cfg.slip > 0:
            self._limited += 1
            if self._limited % cfg.slip == 0:
                self.stats.truncated += 1
                return Verdict.TRUNCATE
        self.stats.dropped += 1
        return Verdict.DROP

    def _attach(self, ip: str, now: float) -> tuple[list[float], ...]:
        keys = prefix_keys(ip, self.config)
        if keys is None:  # not an address: share one bucket set rather than bypass limits
            keys = prefix_keys("::", self.config) or []
        if len(self._buckets) + len(keys) > self.config.max_buckets:
            self.sweep(now)
        buckets = []
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None:
                lim = self._limits[(key[0], key[1])]
                bucket = self._buckets[key] = [lim.burst, now, lim.rate, lim.burst]
            buckets.append(bucket)
        if len(self._clients) >= self.config.max_buckets:
            self._clients.clear()
        found = self._clients[ip] = tuple(buckets)
        return found

    def sweep(self, now: float) -> None:
        """Forget refilled buckets; if still over the bound, evict the oldest quarter."""
        self.stats.sweeps += 1
        self._next_sweep = now + self.config.sweep_interval
        full = [
            key
            for key, (tokens, last, rate, burst) in self._buckets.items()
            if tokens + (now - last) * rate >= burst
        ]
        for key in full:
            del self._buckets[key]
        excess = len(self._buckets) - self.config.max_buckets * 3 // 4
        if excess > 0:
            for key in list(self._buckets)[:excess]:  # dicts iterate oldest-inserted first
                del self._buckets[key]
            self.stats.evicted += excess
        # The memo may point at deleted buckets; rebuilding it is cheap and keeps the
        # address -> bucket mapping single-valued.
        self._clients.clear()

    def __len__(self) -> int:
        return len(self._buckets)


class TcpLimiter:
    """Caps open TCP connections per client address and in total."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self.open = 0
        self._by_client: dict[str, int] = {}

    def try_open(self, ip: str) -> bool:
        """Count a new connection if both caps allow it; False means close it at once."""
        count = self._by_client.get(ip, 0)
        if count >= self.per_client or self.open >= self.total:
            return False
        self._by_client[ip] = count + 1
        self.open += 1
        return True

    def closed(self, ip: str) -> None:
        """A connection counted by ``try_open`` has closed."""
        count = self._by_client.get(ip, 0)
        if count <= 0:
            return
        if count == 1:
            del self._by_client[ip]  # bounded by open connections, not by clients ever seen
        else:
            self._by_client[ip] = count - 1
        self.open -= 1


# --- the ANY cap --------------------------------------------------------------------------


def any_answer(query: Query, mode: AnyMode, udp_size: int) -> bytes | None:
    """The capped answer to a UDP ANY query; None means "forward it as usual"."""
    if mode is AnyMode.FORWARD:
        return None
    if mode is AnyMode.REFUSE:
        return reply.minimal(query, udp_size, REFUSED)
    return reply.hinfo(query, udp_size)


# --- configuration -----------------------------------------------------------------------
