"""Answers made without the network: admission (access list, rate limit, ANY), blocks,
and answers from the cache (plain, or safe-search rewritten).
"""

from __future__ import annotations

from . import reply
from .acl import AclAction
from .miss import _REWRITTEN, Misses
from .policy.decision import Block, Rewrite
from .policy.profile import Profile
from .querystate import TCP, UDP, ClientState, Miss
from .ratelimit import Verdict, any_answer
from .rewrite import rewrite_key
from .wire import NOERROR, TYPE_ANY, Query

_ALLOWED = ("allowed", "none")  # the label of a plain answer (not monitored)
_BLOCK_MEMO_SECONDS = 1.0  # a block may change with the clock (schedules): re-decide each second


class LocalAnswers(Misses):
    """Answers made without the network."""

    def _admit(
        self,
        query: Query,
        client: ClientState,
        ip: str,
        transport: int,
        verdict: Verdict | None = None,
    ) -> bytes | None | bool:
        """False to go on; else the answer (or None) for a refused or rate-limited query."""
        if not client.allowed:
            self.stats.record_answer(transport, "refused", "none", "none", 0.0)
            return None if self.acl.action is AclAction.DROP else self.state.blocks.refused(query)
        limiter = self.ratelimit
        if limiter is None or transport == TCP:
            return False
        if verdict is None:
            verdict = limiter.check(ip)
        if verdict is Verdict.DROP:
            self.stats.record_answer(transport, "ratelimited", "none", "none", 0.0)
            return None
        if verdict is Verdict.TRUNCATE:
            self.stats.record_answer(transport, "ratelimited", "none", "none", 0.0)
            return reply.minimal(query, self.policy.udp_size, NOERROR, tc=True)
        if query.qtype == TYPE_ANY:
            return any_answer(query, limiter.config.any_mode, self.policy.udp_size) or False
        return False

    def _blocked(
        self,
        query: Query,
        block: Block,
        client: ClientState,
        profile: Profile,
        transport: int,
        received: float,
    ) -> bytes | None:
        response = self.state.blocks.answer(query, block)
        answer_key, counter = self._block_labels(block)
        self.stats.record_answer(transport, *answer_key, self.clock() - received)
        if counter is not None:
            counter()
        if response is not None:
            if transport == UDP:
                response = reply.fit_udp(response, query, self.policy.udp_size)
            until = self.clock() + _BLOCK_MEMO_SECONDS
            self._remember(query, client, profile, response, until, answer_key, counter, transport)
        return response

    def _allowed(
        self,
        query: Query,
        client: ClientState,
        profile: Profile,
        transport: int,
        received: float,
        label: tuple[str, str] = _ALLOWED,
    ) -> bytes | Miss | None:
        now = self.clock()
        entry = self.cache.get(query.key, now)
        if entry is None:
            self.stats.cache_misses += 1
            miss = Miss(query, profile, received, None)
            miss.label = label
            return miss
        self.stats.cache_hits += 1
        if now >= entry.refresh_at:
            self._prefetch(query, profile, None)
        body = entry.body_at(now, self.cache.policy)
        response, action, category = self._serve(
            query, entry.answer, body, profile, transport, label
        )
        self.stats.record_answer(transport, action, category, profile.name, self.clock() - received)
        if response is not None and action == label[0]:
            until = entry.reuse_until(now)
            answer_key = (action, category, profile.name)
            self._remember(
                query,
                client,
                profile,
                response,
                until,
                answer_key,
                self._count_cache_hit,
                transport,
                (entry, body) if label is _ALLOWED else None,
            )
        return response

    def _any_minimal(
        self, query: Query, profile: Profile, transport: int, received: float
    ) -> bytes | None:
        """ANY for a safe-search name: RFC 8482's HINFO, so no unrewritten address leaves."""
        self.stats.record_answer(
            transport, "rewritten", "none", profile.name, self.clock() - received
        )
        return reply.hinfo(query, self.policy.udp_size)

    def _rewrite(
        self,
        query: Query,
        rewrite: Rewrite,
        client: ClientState,
        profile: Profile,
        transport: int,
        received: float,
    ) -> bytes | Miss:
        now = self.clock()
        entry = self.cache.get(rewrite_key(query.key, rewrite.target), now)
        if entry is not None:
            if now >= entry.refresh_at:
                self._prefetch(query, profile, rewrite)
            body = entry.body_at(now, self.cache.policy)
            response, _, _ = self._serve(
                query, entry.answer, body, profile, transport, _REWRITTEN, rewrite
            )
            assert response is not None  # only a cloaking block is silent, never a rewrite
            self.stats.record_answer(
                transport, "rewritten", "none", profile.name, self.clock() - received
            )
            self.stats.record_rewrite(rewrite.engine)
            until = entry.reuse_until(now)
            answer_key = ("rewritten", "none", profile.name)
            counter = self._rewrite_counter(rewrite.engine)
            self._remember(query, client, profile, response, until, answer_key, counter, transport)
            return response
        return Miss(query, profile, received, rewrite)
