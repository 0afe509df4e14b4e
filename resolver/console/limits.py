"""Request rate limits for the console and the block page: token buckets per address and in all.

Every student device can reach the block page (blocked names answer its address), and the
single-process server runs it on the event loop that answers DNS: a page costs a policy
lookup and a template, so one looping script could take DNS time from everyone. As on the DNS
side, each address gets a token bucket (a steady rate and a burst), and all addresses together
get a bigger one, so a flood is answered 429 at the cost of a dict lookup before any work.
The addresses live in memory only, for as long as their bucket is not full again; nothing is
logged or written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` requests on average, ``burst`` at once."""

    per_second: float
    burst: float


# A page view is one request (the styles are inline), so a person clicking never meets these.
CONSOLE_PER_ADDRESS = Rate(10, 60)
CONSOLE_TOTAL = Rate(100, 400)
BLOCKPAGE_PER_ADDRESS = Rate(5, 30)  # a phone's apps retrying blocked trackers stay under it
BLOCKPAGE_TOTAL = Rate(200, 1000)
MAX_ADDRESSES = 8192  # buckets kept at most; full ones are forgotten first


class RequestLimiter:
    """``admit(address)``: False when the address, or everybody together, is over its rate."""

    def __init__(self, per_address: Rate, total: Rate, clock: Callable[[], float]) -> None:
        self._each, self._all = per_address, total
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)
        self._total = (total.burst, clock())

    def admit(self, address: str) -> bool:
        now = self._clock()
        total = _refill(self._total, self._all, now)
        mine = _refill(self._buckets.get(address, (self._each.burst, now)), self._each, now)
        if total < 1 or mine < 1:
            self._buckets[address] = (mine, now)
            self._total = (total, now)
            return False
        self._buckets[address] = (mine - 1, now)
        self._total = (total - 1, now)
        if len(self._buckets) > MAX_ADDRESSES:
            self._forget(now)
        return True

    def _forget(self, now: float) -> None:
        """Drop the buckets that are full again (they hold nothing); if all are busy, the
        oldest half: a flood of forged sources cannot grow this without bound."""
        kept = {
            a: b for a, b in self._buckets.items() if _refill(b, self._each, now) < self._each.burst
        }
        if len(kept) > MAX_ADDRESSES // 2:
            kept = dict(sorted(kept.items(), key=lambda item: item[1][1])[len(kept) // 2 :])
        self._buckets = kept


def _refill(bucket: tuple[float, float], rate: Rate, now: float) -> float:
    tokens, at = bucket
    return min(rate.burst, tokens + max(0.0, now - at) * rate.per_second)


def limit_requests(limiter: RequestLimiter) -> Middleware:
    """An aiohttp middleware answering 429 (retry in a second) to a request over the limit."""

    @web.middleware
    async def limited(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not limiter.admit(request.remote or ""):
            raise web.HTTPTooManyRequests(text="too many requests: retry in a second",
                                          headers={"Retry-After": "1"})  # fmt: skip
        return await handler(request)

    return limited
