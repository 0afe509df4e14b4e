"""Prepared answers: a client's profile, and the answers kept for it (the per-profile memo
and the C fast path's prepared blocks) so identical packets skip the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING

from . import fastpath
from ._nametable import QEND_BITS
from .answer_steps import cloaking_block
from .cache import CacheEntry, untrack
from .pipeline_base import ResolverBase
from .policy.decide import clockless_list_decision, decide
from .policy.decision import ALLOW, AnswerMode, Block
from .policy.profile import Profile
from .querystate import UDP, ClientState, bypass_kind
from .stats import QTYPE_INDEX, QTYPE_OTHER, Stats
from .wire import HEADER_LEN, TYPE_ANY, Query

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
                entry = (heads, body, (0.0, b"", answer_key, qidx, counter, None))
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
        response = self.prepared_memo(data, client, transport)
        if response is not None or client.fast is None:
            return response
        return self.prepared_block(data, client, transport)

    def prepared_memo(self, data: bytes, client: ClientState, transport: int) -> bytes | None:
        """An identical packet's answer from the memo, still valid or renewed; or None."""
        memo = client.memo if transport == UDP else client.stream_memo
        prepared = memo.get(data[2:])  # type: ignore[union-attr]
        if prepared is None:
            return None
        if prepared[0] > self.clock():
            self.count_prepared(prepared, transport)
            return data[:2] + prepared[1]
        return None if prepared[5] is None else self.renew(data, client, prepared, transport)

    def renew(
        self, data: bytes, client: ClientState, prepared: tuple, transport: int
    ) -> bytes | None:
        """A cache hit's prepared answer that ran out (its TTLs ticked) made again as the
        pipeline would make it, or None when the pipeline must answer.

        With many names each popular one's answer runs out once a second, so about a third
        of the hits of a large working set came here through the whole pipeline (issue #13).
        The packet is the one parsed before, byte for byte but the ID, so parsing, admission
        (the caller asked the rate limiter; ANY and ECS are never renewed) and assembly are
        skipped; what may change is decided again: the policy at this time (schedules), the
        cache entry (the same one, fresh, not due for prefetch), CNAME cloaking. Counted as
        the pipeline counts it; the body re-rendered between the same header and OPT."""
        renewal: tuple[str, int, CacheEntry, int, int] = prepared[5]
        qname, qtype, cached, qend, opt = renewal  # opt: the OPT's length at the end, or 0
        received = now = self.clock()
        if now >= cached.refresh_at:
            return None  # expired, or the hit that starts the prefetch: the pipeline's
        cache = self.cache
        profile = client.profile
        shared = self.state.index.shared
        if (
            cache.peek(cached.key) is not cached
            or decide(profile, qname, qtype, self.wallclock(), shared) is not ALLOW
            or (
                cached.answer.cname_targets
                and cloaking_block(profile, cached.answer, self.wallclock(), shared) is not None
            )
        ):
            return None
        stats = self.stats
        stats.record_query(transport, qtype)
        cache.get(cached.key, now)  # the hit counted and the entry marked recently used
        stats.cache_hits += 1
        response = b"".join(
            (
                data[:2],
                prepared[1][: qend - 2],
                cached.body_at(now, cache.policy),
                prepared[1][-opt:] if opt else b"",
            )
        )
        answer_key = prepared[2]
        action, category, name = answer_key
        stats.record_answer(transport, action, category, name, self.clock() - received)
        renewed = (
            cached.reuse_until(now),
            response[2:],
            answer_key,
            prepared[3],
            prepared[4],
            prepared[5],
        )
        untrack(renewed)
        (client.memo if transport == UDP else client.stream_memo)[data[2:]] = renewed  # type: ignore[index]
        return response

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
        cached: tuple[CacheEntry, bytes] | None = None,
    ) -> None:
        """Keep the answer for identical packets within ``valid_until``; ``counter`` bumps the
        extra statistic (cache hit, rewrite engine, bypass kind) each resend must count too,
        and must reach nothing but the stats (a Stats method or a partial of one).

        ``cached``: the cache entry and the body of a plain allowed answer (``_allowed``), so
        that once ``valid_until`` has passed ``renew`` can make the answer again from them.

        UDP answers (fitted to the UDP size) and the streams' (TCP, DoT, DoH: whole answers) are
        kept apart, so a stream never gets an answer cut for UDP and UDP never one too big."""
        memo = client.memo if transport == UDP else client.stream_memo
        if memo is None or profile is not client.profile:
            return  # ECS chose another profile: the packet alone no longer decides the answer
        if len(memo) >= self.policy.memo_size:
            shed(memo)
        qidx = QTYPE_INDEX.get(query.qtype, QTYPE_OTHER)
        entry = (
            valid_until,
            response[2:],
            answer_key,
            qidx,
            counter,
            self._renewal(query, response, cached),
        )
        # Out of the cyclic collector's lists, as the cache's entries are (cache.py): as each
        # name's answer is replaced every second the young count stayed flat while 15,000-
        # 25,000 replaced entries piled up for one young collection. Nothing in an entry
        # leads back to it: numbers, bytes, strings, and a counter that reaches only the stats
        # (made once per kind, not per entry, so it adds nothing to the pile either).
        untrack(entry, answer_key)
        memo[query.data[2:]] = entry

    @staticmethod
    def _renewal(
        query: Query, response: bytes, cached: tuple[CacheEntry, bytes] | None
    ) -> tuple | None:
        """What ``renew`` needs for this answer, or None where it must go through the pipeline:
        not a plain cache answer, ANY (rate-limit modes, safe search's HINFO), ECS (the
        option may choose another profile), or not header + question + body + OPT as sent
        (cut to fit UDP). Holds the cache entry (untracked too), so an evicted entry's body
        lives on until the memo drops this answer: the memo is bounded (memo_size)."""
        if cached is None or query.qtype == TYPE_ANY or query.ecs is not None:
            return None
        entry, body = cached
        qend, end = query.qend, query.qend + len(body)
        if response[qend:end] != body or len(response) - end not in (0, 11):
            return None
        renewal = (query.qname, query.qtype, entry, qend, len(response) - end)
        untrack(renewal)
        return renewal

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


def shed(memo: dict) -> None:
    """Make room in a full memo: drop its oldest quarter (by first insertion), not all of it.
    With more names than the memo holds (a large working set) clearing it all sent every
    popular name back through the pipeline after each fill (issue #13); a quarter at a time
    costs the same per insertion and keeps three quarters answering."""
    for key in list(islice(memo, max(1, len(memo) // 4))):
        del memo[key]
