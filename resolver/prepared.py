"""Prepared answers: a client's profile, and the answers kept for it (the per-profile memo
and the C fast path's prepared blocks) so identical packets skip the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from . import fastpath
from ._nametable import QEND_BITS
from .cache import untrack
from .pipeline_base import ResolverBase
from .policy.decide import clockless_list_decision
from .policy.decision import AnswerMode, Block
from .policy.profile import Profile
from .querystate import UDP, ClientState, bypass_kind
from .stats import QTYPE_INDEX, QTYPE_OTHER, Stats
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
            client.stream_memo = self._memos.setdefault(("stream", memo_key), {})
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

    def prepared(self, data: bytes, client: ClientState, transport: int) -> bytes | None:
        """An identical packet's answer from the memo, or a list block's from the fast path;
        None when the pipeline must answer. Streams read their own memo of whole answers
        (``_remember``); the fast path's blocks always fit in 512 bytes, so every transport
        shares them."""
        memo = client.memo if transport == UDP else client.stream_memo
        prepared = memo.get(data[2:])  # type: ignore[union-attr]
        if prepared is not None and prepared[0] > self.clock():
            self.count_prepared(prepared, transport)
            return data[:2] + prepared[1]
        return None if client.fast is None else self.prepared_block(data, client, transport)

    def prepared_block(self, data: bytes, client: ClientState, transport: int) -> bytes | None:
        """A list-blocked name's answer from a prepared block (resolver/fastpath.py), or None."""
        code = client.classify(data, client.static)  # type: ignore[misc]
        if code < 0:
            return None
        key = code >> QEND_BITS
        entry = client.fast.get(key)  # type: ignore[union-attr]
        if entry is None:
            entry = self.fast_block(client, key)
        if not entry:
            return None
        heads, body, prepared = entry  # type: ignore[misc]
        self.count_prepared(prepared, transport)
        head = heads[(data[2] & 1) | ((data[3] >> 3) & 2)]  # RD and CD echoed
        return data[:2] + head + data[HEADER_LEN : code & fastpath.QEND_MASK] + body

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
        counter: Callable[[], None] | None,
        transport: int,
    ) -> None:
        """Keep the answer for identical packets within ``valid_until``; ``counter`` bumps the
        extra statistic (cache hit, rewrite engine, bypass kind) each resend must count too,
        and must reach nothing but the stats (a Stats method or a partial of one).

        UDP answers (fitted to the UDP size) and the streams' (TCP, DoT, DoH: whole answers) are
        kept apart, so a stream never gets an answer cut for UDP and UDP never one too big."""
        memo = client.memo if transport == UDP else client.stream_memo
        if memo is None or profile is not client.profile:
            return  # ECS chose another profile: the packet alone no longer decides the answer
        if len(memo) >= self.policy.memo_size:
            memo.clear()
        qidx = QTYPE_INDEX.get(query.qtype, QTYPE_OTHER)
        entry = (valid_until, response[2:], answer_key, qidx, counter)
        # Out of the cyclic collector's lists, as the cache's entries are (cache.py): as each
        # name's answer is replaced every second the young count stayed flat while 15,000-
        # 25,000 replaced entries piled up for one young collection. Nothing in an entry
        # leads back to it: numbers, bytes, strings, and a counter that reaches only the stats
        # (made once per kind, not per entry, so it adds nothing to the pile either).
        untrack(entry, answer_key)
        memo[query.data[2:]] = entry

    def _rewrite_counter(self, engine: str) -> Callable[[], None]:
        """The counter of ``engine``'s rewrites for prepared answers: one per engine."""
        counter = self._rewrite_counters.get(engine)
        if counter is None:
            counter = self._rewrite_counters[engine] = partial(self.stats.record_rewrite, engine)
        return counter

    def count_prepared(self, prepared: tuple, transport: int = UDP) -> None:
        """Stats for an answer served from the memo (one query, one answer, ~0 latency)."""
        stats = self.stats
        stats.queries[transport][prepared[3]] += 1
        answers = stats.answers
        key = prepared[2]
        answers[key] = answers.get(key, 0) + 1
        stats.durations[transport][0] += 1
        if prepared[4] is not None:
            prepared[4]()


def count_cache_hit(stats: Stats) -> None:
    """One more cache hit: a prepared answer's resend counts as one, as it did first. A
    function of the stats alone, so its counter holds nothing that leads back to a memo."""
    stats.cache_hits += 1
