"""The cache miss, the one stage that waits: one upstream exchange per key in flight, its
waiters answered (or served stale, or SERVFAIL) when it completes; and the reply bytes
built from cached or upstream data (``_serve``), which hits share.
"""

from __future__ import annotations

import asyncio
import logging

from . import reply
from .answer_steps import cloaking_block, ede_options
from .cache import CacheEntry
from .forward import Deliver, Exchange
from .policy.decision import Rewrite
from .policy.profile import Profile
from .prepared import PreparedAnswers
from .querystate import UDP, Miss, Waiter
from .response import ScannedAnswer
from .rewrite import rewrite_key, rewritten, target_key
from .upstream import build_upstream_query
from .wire import SERVFAIL, Query, text_to_wire

log = logging.getLogger(__name__)
_REWRITTEN = ("rewritten", "none")


class Misses(PreparedAnswers):
    """Cache misses: the exchange with the upstreams and its completion."""

    def _serve(
        self,
        query: Query,
        answer: ScannedAnswer,
        body: bytes,
        profile: Profile,
        transport: int,
        label: tuple[str, str],
        rewrite: Rewrite | None = None,
        stale: bool = False,
    ) -> tuple[bytes | None, str, str]:
        """Steps 4-6 of resolver/answer_steps.py for cached or upstream data: (bytes, or None
        for a silent block, and the action and category to count it under)."""
        if rewrite is None and answer.cname_targets:  # most answers have none: no clock read
            block = cloaking_block(profile, answer, self.wallclock(), self.state.index.shared)
            if block is not None:
                response = self.state.blocks.answer(query, block)
                if response is None and transport != UDP:
                    response = b""  # silence over a stream: the transport closes, no answer
                return response, "blocked", block.category
        udp_size = self.policy.udp_size
        if rewrite is None and not stale:
            response = reply.from_answer(query, answer, body, udp_size)
        else:
            options = ede_options(rewrite, stale)
            response = reply.with_ede(query, answer, body, udp_size, options)
        if transport == UDP:
            response = reply.fit_udp(response, query, udp_size)
        return response, "stale" if stale else label[0], label[1]

    # -- the cache miss: the one stage that waits -------------------------------------------
    def start_miss(self, miss: Miss, transport: int, deliver: Deliver) -> bool:
        """Ask the upstreams (once per key in flight); ``deliver`` gets the answer bytes.

        False when the miss was dropped (too many in flight): nothing will be delivered.
        """
        waiter = Waiter(miss.query, transport, deliver, miss.profile, miss.received, miss.rewrite)
        waiter.ip = miss.ip
        waiter.label = miss.label
        if self._ask(waiter):
            return True
        self.dropped += 1  # bounded memory under a flood of unique names
        self.stats.record_answer(transport, "dropped", "none", miss.profile.name, 0.0)
        return False

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def resolve(self, miss: Miss, transport: int) -> bytes | None:
        """``start_miss`` as a coroutine (TCP clients, explain); None if it was dropped."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if not self.start_miss(miss, transport, future.set_result):
            return None
        return await future

    def _ask(self, waiter: Waiter) -> bool:
        """Join the exchange in flight for the waiter's upstream key, or start one; False
        when too many are in flight."""
        query, rewrite = waiter.query, waiter.rewrite
        key = query.key if rewrite is None else target_key(query.key, text_to_wire(rewrite.target))
        exchange = self._inflight.get(key)
        if exchange is not None:
            exchange.waiters.append(waiter)
            return True
        if len(self._inflight) >= self.policy.max_inflight:
            return False
        message = build_upstream_query(key, query.flags, query.do, self.policy.udp_size)
        exchange = Exchange(key, message)
        self._inflight[key] = exchange
        exchange.waiters.append(waiter)
        self.dispatcher.start(exchange)
        return True

    def _complete(self, exchange: Exchange, answer: ScannedAnswer | None) -> None:
        del self._inflight[exchange.key]
        if answer is None:
            for waiter in exchange.waiters:
                if waiter.deliver is None:
                    self._prefetched(waiter, exchange.key, None)
                else:
                    self._failure(waiter)
            return
        entry = self.cache.put(exchange.key, answer)
        body = entry.body_at(self.clock(), self.cache.policy) if entry else answer.body
        for waiter in exchange.waiters:
            if waiter.deliver is None:
                self._prefetched(waiter, exchange.key, answer)
                continue
            if waiter.rewrite is not None:
                self._complete_rewrite(waiter, exchange.key, answer)
                continue
            response, action, category = self._serve(
                waiter.query, answer, body, waiter.profile, waiter.transport, waiter.label
            )
            self._deliver(waiter, response or b"", action, category)

    def _complete_rewrite(self, waiter: Waiter, key: bytes, target: ScannedAnswer) -> None:
        query, rewrite = waiter.query, waiter.rewrite
        assert rewrite is not None
        try:
            answer, entry = self._store_rewrite(query, rewrite, key, target)
        except Exception:  # a target answer dnslib cannot re-encode: fail closed, not open
            log.exception("safe-search rewrite of %s failed", query.qname)
            self._deliver(
                waiter,
                reply.error(query.data, SERVFAIL, query, self.policy.udp_size),
                "servfail",
                "none",
            )
            return
        body = entry.body_at(self.clock(), self.cache.policy) if entry else answer.body
        self.stats.record_rewrite(rewrite.engine)
        response, action, category = self._serve(
            query, answer, body, waiter.profile, waiter.transport, _REWRITTEN, rewrite
        )
        self._deliver(waiter, response or b"", action, category)

    def _store_rewrite(
        self, query: Query, rewrite: Rewrite, key: bytes, target: ScannedAnswer
    ) -> tuple[ScannedAnswer, CacheEntry | None]:
        """The asked name's answer built from the target's (``key`` its upstream key), cached."""
        answer = rewritten(query.key, key[:-5], target, self.cache.policy.max_ttl)
        return answer, self.cache.put(rewrite_key(query.key, rewrite.target), answer)

    def _prefetch(self, query: Query, profile: Profile, rewrite: Rewrite | None) -> None:
        """Refresh a cached answer a hit found in the last tenth of its TTL, in the
        background: a waiter with no one to deliver to, so the refreshed answer comes through
        the same exchange checks and the same ``_complete`` as a client's miss, and replaces
        the entry there (rewrites through ``rewritten``, as for a client). One per entry."""
        if not self.cache.policy.prefetch:
            return
        entry_key = query.key if rewrite is None else rewrite_key(query.key, rewrite.target)
        if entry_key in self._prefetching:
            return
        self._prefetching.add(entry_key)  # before _ask: a start can fail synchronously
        if self._ask(Waiter(query, UDP, None, profile, self.clock(), rewrite)):
            self.stats.prefetches += 1  # lachan_prefetch_total
        else:
            self._prefetching.discard(entry_key)  # no room: the entry simply expires

    def _prefetched(self, waiter: Waiter, key: bytes, answer: ScannedAnswer | None) -> None:
        """A prefetch ended: its entry is free to be refreshed again; a rewrite's is stored."""
        query, rewrite = waiter.query, waiter.rewrite
        if rewrite is None:
            self._prefetching.discard(query.key)  # stored by _complete with every waiter's
            return
        self._prefetching.discard(rewrite_key(query.key, rewrite.target))
        if answer is not None:
            try:
                self._store_rewrite(query, rewrite, key, answer)
            except Exception:  # as for a client: the old entry stays until it expires
                log.exception("safe-search rewrite of %s failed", query.qname)

    def _deliver(self, waiter: Waiter, response: bytes, action: str, category: str) -> None:
        if self.querylog is not None and len(response) >= 12:
            query = waiter.query
            self.querylog.log(
                waiter.ip,
                query.qname,
                query.qtype,
                action,
                category,
                waiter.profile.name,
                response[3] & 0x0F,
            )
        self.stats.record_answer(
            waiter.transport, action, category, waiter.profile.name, self.clock() - waiter.received
        )
        waiter.deliver(response)  # type: ignore[misc]  # a prefetch never reaches here

    def _failure(self, waiter: Waiter) -> None:
        """No upstream answered: serve-stale through the same steps as a fresh answer (a
        rewritten name only from its rewrite's stale copy), else SERVFAIL."""
        query, rewrite = waiter.query, waiter.rewrite
        key = query.key if rewrite is None else rewrite_key(query.key, rewrite.target)
        stale = self.cache.get_stale(key, self.clock())
        if stale is None:
            log.debug("SERVFAIL for %s: no upstream answered", query.qname)
            error = reply.error(query.data, SERVFAIL, query, self.policy.udp_size)
            self._deliver(waiter, error, "servfail", "none")
            return
        if rewrite is not None:
            self.stats.record_rewrite(rewrite.engine)
        label = waiter.label if rewrite is None else _REWRITTEN
        body = stale.stale_body(self.cache.policy)
        response, action, category = self._serve(
            query, stale.answer, body, waiter.profile, waiter.transport, label, rewrite, True
        )
        self._deliver(waiter, response or b"", action, category)
