"""The query pipeline: the order of stages for one query lives in ``Resolver.answer_now``.

Everything that can be answered without the network (a malformed query, a cache hit, and
later a block or a rewrite) is answered synchronously, so a transport can reply inside its
``datagram_received`` with no task or coroutine. Only a cache miss returns the parsed query,
and the transport then awaits ``Resolver.resolve`` for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from . import synth
from .cache import Cache
from .errors import UpstreamError
from .response import ScannedAnswer, question_end, scan_answer
from .upstream import Forwarder, build_upstream_query
from .wire import SERVFAIL, Query, Unanswerable, WireError, parse_query

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServePolicy:
    udp_size: int = 1232  # our EDNS buffer size (DNS flag day 2020)
    max_inflight: int = 20_000  # concurrent cache misses before new ones are dropped
    memo_size: int = 50_000  # prepared UDP answers kept for repeated identical packets


class Resolver:
    """Answers queries from the cache or the upstreams; shared by every transport."""

    def __init__(
        self,
        cache: Cache,
        forwarder: Forwarder,
        policy: ServePolicy,
        clock: Callable[[], float],
    ) -> None:
        self.cache = cache
        self.forwarder = forwarder
        self.policy = policy
        self.clock = clock
        # Prepared UDP answers keyed by the query bytes after the ID: (valid_until, tail).
        # A repeated identical query then costs one dict lookup and one concatenation.
        self.memo: dict[bytes, tuple[float, bytes]] = {}
        self._inflight: dict[bytes, asyncio.Future[ScannedAnswer]] = {}
        self.dropped = 0
        self.servfails = 0
        self.formerrs = 0

    # -- synchronous stages -------------------------------------------------------------
    def answer_now(self, data: bytes, udp: bool) -> bytes | Query | None:
        """Bytes to send now, a Query that needs the upstream, or None to stay silent."""
        try:
            query = parse_query(data)
        except Unanswerable:
            self.dropped += 1
            return None
        except WireError as exc:
            self.formerrs += 1
            return synth.error(data, exc.rcode, exc.query, self.policy.udp_size)
        now = self.clock()
        entry = self.cache.get(query.key, now)
        if entry is None:
            return query
        response = synth.from_answer(
            query, entry.answer, entry.body_at(now, self.cache.policy), self.policy.udp_size
        )
        if udp:
            response = synth.fit_udp(response, query, self.policy.udp_size)
            next_second = entry.stored + int(now - entry.stored) + 1
            self._remember(data, response, min(next_second, entry.expires))
        return response

    def _remember(self, data: bytes, response: bytes, valid_until: float) -> None:
        memo = self.memo
        if len(memo) >= self.policy.memo_size:
            memo.clear()
        memo[data[2:]] = (valid_until, response[2:])

    # -- the one asynchronous stage -----------------------------------------------------
    def can_start_miss(self) -> bool:
        if len(self._inflight) >= self.policy.max_inflight:
            self.dropped += 1
            return False
        return True

    async def resolve(self, query: Query, udp: bool) -> bytes:
        """Answer a cache miss from the upstreams; SERVFAIL (or stale) when they all fail."""
        try:
            answer = await self._coalesced(query)
        except (UpstreamError, WireError) as exc:
            return self._failure_answer(query, exc, udp)
        now = self.clock()
        entry = self.cache.get(query.key, now) if answer.cacheable else None
        body = entry.body_at(now, self.cache.policy) if entry else answer.body
        response = synth.from_answer(query, answer, body, self.policy.udp_size)
        return synth.fit_udp(response, query, self.policy.udp_size) if udp else response

    def _failure_answer(self, query: Query, exc: Exception, udp: bool) -> bytes:
        stale = self.cache.get_stale(query.key, self.clock())
        if stale is not None:
            response = synth.from_answer(
                query, stale.answer, stale.stale_body(self.cache.policy), self.policy.udp_size
            )
            return synth.fit_udp(response, query, self.policy.udp_size) if udp else response
        self.servfails += 1
        log.debug("SERVFAIL for %s: %s", query.qname, exc)
        return synth.error(query.data, SERVFAIL, query, self.policy.udp_size)

    async def _coalesced(self, query: Query) -> ScannedAnswer:
        """Identical concurrent misses share one upstream exchange."""
        key = query.key
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ScannedAnswer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            answer = await self._fetch(query)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters may be none
            raise
        finally:
            del self._inflight[key]
        future.set_result(answer)
        return answer

    async def _fetch(self, query: Query) -> ScannedAnswer:
        message = build_upstream_query(query.key, query.flags, query.do, self.policy.udp_size)
        question = query.key[:-1]
        reply = await self.forwarder.forward(message, question)
        answer = scan_answer(reply, question_end(reply))
        self.cache.put(query.key, answer)
        return answer
