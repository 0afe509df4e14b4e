"""The query pipeline: the order of stages for one query lives in ``Resolver.answer``.

Resolver is built from one class per concern, each in its own module and each building on
the one before: ResolverBase (pipeline_base.py: snapshots, client tables), PreparedAnswers
(prepared.py: clients, the memo and the C fast path), Misses (miss.py: the upstream exchange,
and the reply bytes from cached or upstream data), LocalAnswers (local_answers.py: admission,
blocks, cache hits and rewrites), and Resolver here, whose ``answer`` puts the stages in order.

Everything that can be answered without the network (a malformed query, a refused client,
a block, the canary, a cache hit) is answered synchronously, so a transport replies inside
its ``datagram_received`` with no task or coroutine. Only a cache miss goes to the
upstreams, and its answer arrives later through a ``deliver`` callback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from . import reply
from .acl import Acl, AclAction
from .answer_steps import any_is_rewritten
from .cache import Cache
from .forward import Dispatcher, Exchange
from .local_answers import LocalAnswers
from .policy.clients import EcsError, parse_ecs
from .policy.decide import decide
from .policy.decision import ALLOW, Block, Canary, Rewrite
from .prepared import count_cache_hit
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
from .ratelimit import RateLimiter, Verdict
from .stats import Stats
from .upstream import ForwardPolicy, UpstreamAddress
from .wire import FORMERR, TYPE_ANY, Unanswerable, WireError
from .wire_query import parse_query

if TYPE_CHECKING:  # annotations only
    from .querylog import QueryLog
    from .state import ServingState


class Resolver(LocalAnswers):
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
        # The prepared answers' counters, made once (see PreparedAnswers._remember).
        self._count_cache_hit = partial(count_cache_hit, stats)
        self._rewrite_counters: dict[str, Callable[[], None]] = {}
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
        client may have one and the rate limiter let it through, else ``answer``.

        The whole order for one packet, transport shortcuts included (UDP runs the same
        steps inline in ``transport/udp.py``, where a call per packet shows in the figures):

        1. the client's state, chosen once per address (or device ID) and kept: its profile,
           memo and fast path (``prepared.client``); ACL and trust are in it;
        2. the rate limiter's verdict, asked once (``ClientState.limit``), so a limited
           client never gets a prepared answer;
        3. the memo: an identical packet answered within its reuse time is resent under this
           ID (UDP and the streams keep apart memos: a UDP answer may be truncated);
        4. PROXY v2 (UDP only): unwrap, then steps 1 to 3 for the real client;
        5. the fast path: a list-blocked name's prepared block, classified in C;
        6. ``answer``: drop for a denied source, parse, count, admission (ACL, rate limit,
           ANY), the profile from ECS where trusted, the policy decision, then the block,
           rewrite, canary or cache answer, or a ``Miss`` for the upstream exchange.
        """
        if client.memo is not None and (verdict is None or verdict is Verdict.PASS):
            response = self.prepared(data, client, transport)
            if response is not None:
                return response
        return self.answer(data, client, ip, transport, verdict)

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
            return reply.error(data, exc.rcode, exc.query, self.policy.udp_size)
        self.stats.record_query(transport, query.qtype)
        limited = self._admit(query, client, ip, transport, verdict)
        if limited is not False:
            return limited  # type: ignore[return-value]
        profile = client.profile
        if query.ecs is not None:
            # Read from every client, trusted or not: a malformed option is FORMERR (RFC 7871
            # 6) whoever sends it; only a trusted forwarder's chooses the profile.
            try:
                subnet = parse_ecs(query.ecs)
            except EcsError:
                self.stats.record_answer(transport, "formerr", "none", "none", 0.0)
                return reply.error(data, FORMERR, query, self.policy.udp_size)
            if client.trusted_ecs:
                profile = self.state.clients.profile_for(ip, client.listener, subnet)
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
