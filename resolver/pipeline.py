"""The query pipeline: the order of stages for one query lives in ``Resolver.answer``.

Everything that can be answered without the network (a malformed query, a refused client,
a block, the canary, a cache hit) is answered synchronously, so a transport replies inside
its ``datagram_received`` with no task or coroutine. Only a cache miss goes to the
upstreams, and its answer arrives later through a ``deliver`` callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from . import fastpath, synth
from ._nametable import QEND_BITS
from .acl import Acl, AclAction
from .answer_steps import any_is_rewritten, cloaking_block, ede_options
from .cache import Cache, CacheEntry
from .forward import Deliver, Dispatcher, Exchange
from .policy.clients import EcsError, parse_ecs
from .policy.decide import clockless_list_decision, decide
from .policy.decision import ALLOW, AnswerMode, Block, Canary, Rewrite
from .policy.profile import Profile
from .querystate import (  # noqa: F401 - transports and config import these from here
    TCP,
    UDP,
    ClientState,
    LoggedStats,
    Miss,
    ServePolicy,
    Waiter,
    bypass_kind,
    parse_reply,
    question_of,
)
from .ratelimit import AnyMode, RateLimiter, Verdict, any_answer, truncated
from .response import ScannedAnswer
from .rewrite import rewrite_key, rewritten, target_key
from .stats import QTYPE_INDEX, QTYPE_OTHER, Stats
from .upstream import ForwardPolicy, UpstreamAddress, build_upstream_query
from .wire import (
    FORMERR,
    HEADER_LEN,
    SERVFAIL,
    TYPE_ANY,
    Query,
    Unanswerable,
    WireError,
    parse_query,
    text_to_wire,
)

if TYPE_CHECKING:  # state.py builds on config.py, which imports ServePolicy from here
    from .querylog import QueryLog
    from .state import ServingState

log = logging.getLogger(__name__)

_REWRITTEN = ("rewritten", "none")
_BLOCK_MEMO_SECONDS = 1.0  # a block may change with the clock (schedules): re-decide each second


class Resolver:
    """Answers queries from policy, cache or upstreams; one per process, shared by transports."""

    def __init__(
        self,
        cache: Cache,
        upstreams: tuple[UpstreamAddress, ...],
        forward_policy: ForwardPolicy,
        policy: ServePolicy,
        clock: Callable[[], float],
        state: ServingState,
        stats: Stats,
        acl: Acl,
        ratelimit: RateLimiter | None = None,
        wallclock: Callable[[], float] = time.time,
        querylog: QueryLog | None = None,
    ) -> None:
        self.cache = cache
        self.dispatcher = Dispatcher(
            upstreams, forward_policy, clock, parse_reply, self._complete, stats
        )
        self.policy = policy
        self.clock = clock
        self.wallclock = wallclock
        self.stats = stats
        self.acl = acl
        self.ratelimit = ratelimit
        self.state = state
        self._memos: dict[object, dict[bytes, tuple]] = {}
        self._block_labels_memo: dict[int, tuple[Block, tuple]] = {}
        self._fasts: dict[str, dict[int, tuple | bool]] = {}  # per profile, see fastpath.py
        self._client_tables: list[dict[str, ClientState]] = []
        # Moves whenever a client's profile may have changed (a reload, a subscriber binding):
        # connections that keep their ClientState (TCP, DoT, DoH) choose again when it moves.
        self.clients_epoch = 0
        self._inflight: dict[bytes, Exchange] = {}
        self._prefetching: set[bytes] = set()  # cache keys being refreshed (one each)
        self.dropped = 0
        self.querylog = querylog
        if querylog is not None:
            # Only when an operator turned the log on does a query cost anything more.
            self.answer = self._answer_and_log  # type: ignore[method-assign]

    # -- snapshots --------------------------------------------------------------------------
    def swap_state(self, state: ServingState, acl: Acl | None = None) -> None:
        """Serve from a new snapshot; the cache stays, prepared answers and clients reset."""
        self.state = state
        self.clients_epoch += 1
        if acl is not None:
            self.acl = acl
        for memo in self._memos.values():
            memo.clear()
        self._memos = {}
        for fast in self._fasts.values():
            fast.clear()
        self._fasts = {}
        for table in self._client_tables:
            table.clear()

    def client_table(self) -> dict[str, ClientState]:
        """A per-listener cache of ClientState by address (cleared in place on reload)."""
        table: dict[str, ClientState] = {}
        self._client_tables.append(table)
        return table

    def forget_clients(
        self, addresses: Iterable[str], covers: Callable[[str], bool] | None = None
    ) -> None:
        """Drop the per-client state (and so the prepared answers) of these addresses and of
        any cached address ``covers``; every other client keeps its state (subscriber
        bindings change one line at a time)."""
        self.clients_epoch += 1  # connections choose again (they keep one client each)
        for table in self._client_tables:
            for ip in addresses:
                table.pop(ip, None)
                table.pop("::ffff:" + ip, None)
            if covers is not None:
                for ip in [ip for ip in table if covers(ip)]:
                    del table[ip]

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

    # -- prepared answers: the memo and the fast path's blocks --------------------------------
    def respond(
        self,
        data: bytes,
        client: ClientState,
        ip: str,
        transport: int,
        verdict: Verdict | None = None,
    ) -> bytes | Miss | None:
        """The one entry for stream transports (TCP, DoT, DoH): a prepared answer when this
        client may have one and the rate limiter let it through, else ``answer``. (UDP keeps
        its memo lookup inline, then calls ``prepared_block`` and ``answer`` itself.)"""
        if client.memo is not None and (verdict is None or verdict is Verdict.PASS):
            response = self.prepared(data, client, transport)
            if response is not None:
                return response
        return self.answer(data, client, ip, transport, verdict)

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

    # -- synchronous stages -----------------------------------------------------------------
    def answer(
        self,
        data: bytes,
        client: ClientState,
        ip: str,
        transport: int,
        verdict: Verdict | None = None,
    ) -> bytes | Miss | None:
        """Bytes to send now, a Miss for ``start_miss``, or None to stay silent.

        ``verdict`` is the rate limiter's for this packet when the transport already asked it
        (``ClientState.limit``); None to have it asked here.

        Order, and why: parse first (nothing else can trust the bytes); the access list and
        rate limit before any work is spent on a client we will not serve; the policy before
        the cache, because a cached answer must still be blocked when a schedule starts.
        """
        received = self.clock()
        if not client.allowed and self.acl.action is AclAction.DROP:
            # Drop means silence for everything a denied source sends, malformed included:
            # an error answer would still confirm a resolver here (and reflect traffic).
            self.stats.record_answer(transport, "refused", "none", "none", 0.0)
            return None
        try:
            query = parse_query(data)
        except Unanswerable:
            self.stats.record_answer(transport, "dropped", "none", "none", 0.0)
            return None
        except WireError as exc:
            self.stats.record_answer(transport, "formerr", "none", "none", 0.0)
            return synth.error(data, exc.rcode, exc.query, self.policy.udp_size)
        self.stats.record_query(transport, query.qtype)
        limited = self._admit(query, client, ip, transport, verdict)
        if limited is not False:
            return limited  # type: ignore[return-value]
        profile = client.profile
        if query.ecs is not None and client.trusted_ecs:
            try:
                profile = self.state.clients.profile_for(ip, client.listener, parse_ecs(query.ecs))
            except EcsError:
                return synth.error(data, FORMERR, query, self.policy.udp_size)
        decision = decide(
            profile, query.qname, query.qtype, self.wallclock(), self.state.index.shared
        )
        if decision is ALLOW:
            if query.qtype == TYPE_ANY and any_is_rewritten(
                profile, query.qname, query.qtype, self.wallclock(), self.state.index.shared
            ):
                return self._any_minimal(query, profile, transport, received)
            return self._allowed(query, client, profile, transport, received)
        if isinstance(decision, Block):
            if decision.monitor_only:
                # Monitor-only (piloting): answer as usual, but count it (once) as what it
                # would have been: "monitored" with the category that would have blocked it.
                label = ("monitored", decision.category)
                return self._allowed(query, client, profile, transport, received, label)
            return self._blocked(query, decision, client, profile, transport, received)
        if isinstance(decision, Rewrite):
            return self._rewrite(query, decision, client, profile, transport, received)
        assert isinstance(decision, Canary)
        texts = self.state.canary_texts(profile, self.wallclock())
        self.stats.record_answer(
            transport, "allowed", "none", profile.name, self.clock() - received
        )
        return self.state.blocks.canary(query, texts)

    def _answer_and_log(
        self,
        data: bytes,
        client: ClientState,
        ip: str,
        transport: int,
        verdict: Verdict | None = None,
    ) -> bytes | Miss | None:
        """``answer`` plus one query-log record for an immediate answer (misses log on delivery)."""
        result = Resolver.answer(self, data, client, ip, transport, verdict)
        if isinstance(result, Miss):
            result.ip = ip
        elif result and len(result) >= 12 and self.querylog is not None:
            action, category, profile = getattr(self.stats, "last", ("", "", ""))
            qname, qtype = question_of(result)
            self.querylog.log(ip, qname, qtype, action, category, profile, result[3] & 0x0F)
        return result

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
            return truncated(query.data)
        if query.qtype == TYPE_ANY:
            return any_answer(query.data, limiter.config.any_mode) or False
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
                response = synth.fit_udp(response, query, self.policy.udp_size)
            until = self.clock() + _BLOCK_MEMO_SECONDS
            self._remember(query, client, profile, response, until, answer_key, counter, transport)
        return response

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

    def _allowed(
        self,
        query: Query,
        client: ClientState,
        profile: Profile,
        transport: int,
        received: float,
        label: tuple[str, str] = ("allowed", "none"),
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
                query, client, profile, response, until, answer_key, self._cache_hit, transport
            )
        return response

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
        response = synth.from_answer(query, answer, body, udp_size)
        if query.edns and (rewrite is not None or stale):
            # replace our plain OPT (11 bytes) with one carrying the extended errors
            options = ede_options(rewrite, stale)
            response = response[:-11] + synth.opt_record(udp_size, answer.rcode, query.do, options)
        if transport == UDP:
            response = synth.fit_udp(response, query, udp_size)
        return response, "stale" if stale else label[0], label[1]

    def _any_minimal(
        self, query: Query, profile: Profile, transport: int, received: float
    ) -> bytes | None:
        """ANY for a safe-search name: RFC 8482's HINFO, so no unrewritten address leaves."""
        self.stats.record_answer(
            transport, "rewritten", "none", profile.name, self.clock() - received
        )
        return any_answer(query.data, AnyMode.HINFO)

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
            counter = partial(self.stats.record_rewrite, rewrite.engine)
            self._remember(
                query, client, profile, response, until, answer_key, counter, transport
            )
            return response
        return Miss(query, profile, received, rewrite)

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
        extra statistic (cache hit, rewrite engine, bypass kind) each resend must count too.

        UDP answers (fitted to the UDP size) and the streams' (TCP, DoT, DoH: whole answers) are
        kept apart, so a stream never gets an answer cut for UDP and UDP never one too big."""
        memo = client.memo if transport == UDP else client.stream_memo
        if memo is None or profile is not client.profile:
            return  # ECS chose another profile: the packet alone no longer decides the answer
        if len(memo) >= self.policy.memo_size:
            memo.clear()
        qidx = QTYPE_INDEX.get(query.qtype, QTYPE_OTHER)
        memo[query.data[2:]] = (valid_until, response[2:], answer_key, qidx, counter)

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

    def _cache_hit(self) -> None:
        self.stats.cache_hits += 1

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

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def can_start_miss(self) -> bool:
        """Room for another miss? (TCP pauses reading early when there is not.)"""
        return len(self._inflight) < self.policy.max_inflight

    async def resolve(self, miss: Miss, transport: int) -> bytes | None:
        """``start_miss`` as a coroutine (TCP clients, explain); None if it was dropped."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if not self.start_miss(miss, transport, future.set_result):
            return None
        return await future

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
                synth.error(query.data, SERVFAIL, query, self.policy.udp_size),
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
            error = synth.error(query.data, SERVFAIL, query, self.policy.udp_size)
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

    def close(self) -> None:
        self.dispatcher.close()
