"""Prepared answers: a client's profile, and the answers kept for it (the per-profile memo
and the C fast path's prepared blocks) so identical packets skip the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from . import fastpath
from .pipeline_base import ResolverBase
from .policy.decide import clockless_list_decision
from .policy.decision import AnswerMode, Block
from .policy.profile import Profile
from .querystate import UDP, ClientState, bypass_kind
from .stats import QTYPE_INDEX, QTYPE_OTHER
from .wire import HEADER_LEN, Query

if TYPE_CHECKING:  # annotations only
    from .state import ServingState


class PreparedAnswers(ResolverBase):
    """Clients and their prepared answers."""

    def client(
        self, table: dict[str, ClientState], ip: str, listener: tuple[str, int]
    ) -> ClientState:
        state = self.state
        profile = state.clients.profile_for(ip, listener)
        trusted_ecs = state.clients.trusts_ecs(ip)
        memo = None
        proxy = state.clients.trusts_proxy(ip)
        allowed = proxy or self.acl.allows(ip)
        # Prepared answers are shared by a profile's clients: never for one the access list
        # refuses (it would get what allowed clients were answered), nor where every query
        # must be seen (the query log) or comes wrapped (PROXY v2).
        # The memo is keyed by all that selects the profile (resolver/answer_steps.py, step 1):
        # where ECS is trusted the packet's own bytes choose it, together with the listener.
        if allowed and self.querylog is None and not proxy:
            memo_key = (profile.name, listener) if trusted_ecs else profile.name
            memo = self._memos.get(memo_key)
            if memo is None:
                memo = self._memos[memo_key] = {}
        client = ClientState(profile, memo, allowed, trusted_ecs, proxy, listener)
        if memo is not None:
            if self.ratelimit is not None:
                client.limit = self.ratelimit.check
            if not trusted_ecs:
                self._enable_fast_path(client, state)
        if len(table) > 65_536:
            table.clear()  # bounded under a spray of spoofed sources
        table[ip] = client
        return client

    def _enable_fast_path(self, client: ClientState, state: ServingState) -> None:
        """Let the transport answer this client's list-blocked names from prepared blocks."""
        classify = getattr(state.index, "classify", None)
        name = client.profile.name
        static = state.static_tables.get(name)
        if classify is None or static is None:
            return
        fast = self._fasts.get(name)
        if fast is None:
            fast = self._fasts[name] = {}
        client.fast, client.classify, client.static = fast, classify, static

    def fast_block(self, client: ClientState, key: int) -> tuple | bool:
        """The prepared block for a classify() key, or False when this template's answer
        must come from the pipeline (not a block, or one that depends on the clock)."""
        template, shape = fastpath.unpack(key)
        state, profile = self.state, client.profile
        decision = clockless_list_decision(profile, state.index.shared_match(template))  # type: ignore[union-attr]
        entry: tuple | bool = False
        if (
            isinstance(decision, Block)
            and not decision.monitor_only
            and decision.mode is not AnswerMode.DROP
        ):
            heads, body = state.blocks.prepared(decision, shape)
            if HEADER_LEN + fastpath.MAX_QUESTION + len(body) <= min(512, self.policy.udp_size):
                answer_key, counter = self._block_labels(decision)
                qidx = QTYPE_INDEX.get(shape.qtype, QTYPE_OTHER)
                entry = (heads, body, (0.0, b"", answer_key, qidx, counter))
        fast = client.fast
        if fast is not None:
            if len(fast) >= 4096:
                fast.clear()
            fast[key] = entry
        return entry

    def _block_labels(self, block: Block) -> tuple[tuple[str, str, str], Callable[[], None] | None]:
        """The answer's metric labels and its anti-bypass counter (None for most blocks).

        List blocks are shared objects, so these are kept per block; by identity, with the
        block held in the entry so that its id cannot be reused while the entry exists.
        A block names the profile that decided it.
        """
        known = self._block_labels_memo.get(id(block))
        if known is not None and known[0] is block:
            return known[1]
        kind = bypass_kind(block)
        counter = None if kind is None else partial(self.stats.record_bypass, kind)
        labels = (("blocked", block.category, block.profile), counter)
        if len(self._block_labels_memo) >= 4096:
            self._block_labels_memo.clear()
        self._block_labels_memo[id(block)] = (block, labels)
        return labels

    def _remember(
        self,
        query: Query,
        client: ClientState,
        profile: Profile,
        response: bytes,
        valid_until: float,
        answer_key: tuple[str, str, str],
        counter: Callable[[], None] | None = None,
    ) -> None:
        """Keep the answer for identical packets within ``valid_until``; ``counter`` bumps the
        extra statistic (cache hit, rewrite engine, bypass kind) each resend must count too."""
        memo = client.memo
        if memo is None or profile is not client.profile:
            return  # ECS chose another profile: the packet alone no longer decides the answer
        if len(memo) >= self.policy.memo_size:
            memo.clear()
        qidx = QTYPE_INDEX.get(query.qtype, QTYPE_OTHER)
        memo[query.data[2:]] = (valid_until, response[2:], answer_key, qidx, counter)

    def count_prepared(self, prepared: tuple) -> None:
        """Stats for an answer served from the memo (one query, one answer, ~0 latency)."""
        stats = self.stats
        stats.queries[UDP][prepared[3]] += 1
        answers = stats.answers
        key = prepared[2]
        answers[key] = answers.get(key, 0) + 1
        stats.durations[UDP][0] += 1
        if prepared[4] is not None:
            prepared[4]()

    def _cache_hit(self) -> None:
        self.stats.cache_hits += 1
