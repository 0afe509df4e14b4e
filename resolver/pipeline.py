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
from .forward import Deliver, Dispatcher, Exchange
from .response import ScannedAnswer, question_end, scan_answer
from .upstream import ForwardPolicy, UpstreamAddress, build_upstream_query
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
        upstreams: tuple[UpstreamAddress, ...],
        forward_policy: ForwardPolicy,
        policy: ServePolicy,
        clock: Callable[[], float],
    ) -> None:
        self.cache = cache
        self.dispatcher = Dispatcher(upstreams, forward_policy, clock, parse_reply, self._complete)
        self.policy = policy
        self.clock = clock
        # Prepared UDP answers keyed by the query bytes after the ID: (valid_until, tail).
        # A repeated identical query then costs one dict lookup and one concatenation.
        self.memo: dict[bytes, tuple[float, bytes]] = {}
        self._inflight: dict[bytes, Exchange] = {}
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

    # -- the cache miss: the one stage that waits --------------------------------------
    def start_miss(self, query: Query, udp: bool, deliver: Deliver) -> None:
        """Ask the upstreams (once per key in flight); ``deliver`` gets the answer bytes."""
        exchange = self._inflight.get(query.key)
        if exchange is None:
            if len(self._inflight) >= self.policy.max_inflight:
                self.dropped += 1  # bounded memory under a flood of unique names
                return
            message = build_upstream_query(query.key, query.flags, query.do, self.policy.udp_size)
            exchange = Exchange(query.key, message)
            self._inflight[query.key] = exchange
            exchange.waiters.append((query, udp, deliver))
            self.dispatcher.start(exchange)
            return
        exchange.waiters.append((query, udp, deliver))

    def can_start_miss(self) -> bool:
        """Room for another miss? (start_miss also checks; this lets TCP pause early.)"""
        if len(self._inflight) >= self.policy.max_inflight:
            self.dropped += 1
            return False
        return True

    async def resolve(self, query: Query, udp: bool) -> bytes:
        """``start_miss`` as a coroutine, for callers that already run in a task."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.start_miss(query, udp, future.set_result)
        if not future.done() and query.key not in self._inflight:
            return synth.error(query.data, SERVFAIL, query, self.policy.udp_size)
        return await future

    def _complete(self, exchange: Exchange, answer: ScannedAnswer | None) -> None:
        del self._inflight[exchange.key]
        if answer is None:
            for query, udp, deliver in exchange.waiters:
                deliver(self._failure_answer(query, udp))
            return
        entry = self.cache.put(exchange.key, answer)
        body = entry.body_at(self.clock(), self.cache.policy) if entry else answer.body
        udp_size = self.policy.udp_size
        for query, udp, deliver in exchange.waiters:
            response = synth.from_answer(query, answer, body, udp_size)
            deliver(synth.fit_udp(response, query, udp_size) if udp else response)

    def _failure_answer(self, query: Query, udp: bool) -> bytes:
        stale = self.cache.get_stale(query.key, self.clock())
        if stale is not None:
            response = synth.from_answer(
                query, stale.answer, stale.stale_body(self.cache.policy), self.policy.udp_size
            )
            return synth.fit_udp(response, query, self.policy.udp_size) if udp else response
        self.servfails += 1
        log.debug("SERVFAIL for %s: no upstream answered", query.qname)
        return synth.error(query.data, SERVFAIL, query, self.policy.udp_size)

    def close(self) -> None:
        self.dispatcher.close()


def parse_reply(reply: bytes) -> ScannedAnswer:
    """An upstream reply split for caching (raises WireError for a malformed one)."""
    return scan_answer(reply, question_end(reply))
