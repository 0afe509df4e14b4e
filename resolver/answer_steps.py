"""The policy steps every answer passes before its bytes leave, whichever path built it.

Paths that build an answer from cached or upstream data, all through ``Resolver._serve``:
a cache hit (``_allowed``, ``_rewrite``), an upstream answer handed to its waiters
(``_complete``, ``_complete_rewrite``) and serve-stale when every upstream failed
(``_failure``). Two shortcuts only resend bytes these steps already produced: the memo
(prepared answers, keyed by the packet and by everything that selects the profile: the
profile, whether the sender's ECS is trusted and, if so, the listener) and the fast path for
list blocks (resolver/fastpath.py, never used for a client whose ECS is trusted). Both serve
every transport: UDP looks them up inline, the streams (TCP, DoT, DoH) through
``Resolver.respond``; a stream never gets a memo answer UDP truncated, and a stream's answer
too big for UDP is never kept. A plain cache answer whose memo time has run out (its TTLs
ticked) is renewed from the same cache entry (``PreparedAnswers.renew``) only after steps 2
and 4 are taken again at that moment and give the same allow; ANY, ECS and answers cut to fit
UDP go through the pipeline instead.

A prefetch (``Resolver._prefetch``, ``cache.prefetch``) builds no answer: it refreshes a cached
entry through the same upstream exchange, checks and ``_complete`` as a client's miss (a rewrite
through the same ``rewritten``), and every answer later built from that entry passes the steps
below like any other hit. The memo stops at an entry's prefetch window (``reuse_until``), so a
hit there reaches the pipeline and starts the refresh.

The steps, in order:

1. Profile: the client's address, the listener the query reached (its destination address on
   a wildcard bind) and, from a trusted forwarder, the ECS subnet (``Resolver.answer``).
2. Decision on the asked name under that profile (``decide``): block, rewrite, canary, allow.
   ANY for a name that has a safe-search rewrite is answered with RFC 8482's HINFO, never
   forwarded: an upstream's ANY answer would carry the unrewritten addresses.
3. Safe search: a rewritten name is answered only from data cached under its rewrite key
   (the target's records), fresh or stale, never from data cached under the asked name.
4. CNAME cloaking: every CNAME target in an answer that is not a rewrite is decided under the
   profile; a block answers as that block (``cloaking_block``).
5. Extended errors (RFC 8914): EDE 4 Forged Answer for a rewrite, EDE 3 Stale Answer for a
   stale one, when the client sent EDNS (``ede_options``); a stale answer counts as "stale".
6. UDP size: truncated (TC) beyond what the client can receive.
"""

from __future__ import annotations

from .policy.decide import Lookup, decide, decide_cname_chain
from .policy.decision import Block, Rewrite
from .policy.profile import Profile
from .reply import EDE_STALE_ANSWER, SAFE_SEARCH_TEXT, ede_option
from .response import ScannedAnswer
from .wire import TYPE_ANY, wire_to_text

_TYPE_A = 1


def cloaking_block(
    profile: Profile, answer: ScannedAnswer, now: float, lookup: Lookup
) -> Block | None:
    """The block a CNAME target of ``answer`` falls under for ``profile`` (step 4), or None."""
    if not answer.cname_targets:
        return None
    names = [wire_to_text(t).lower() for t in answer.cname_targets]
    block = decide_cname_chain(profile, names, now, lookup)
    if block is None or block.monitor_only:
        return None
    return block


def any_is_rewritten(profile: Profile, qname: str, qtype: int, now: float, lookup: Lookup) -> bool:
    """Whether an ANY query names a safe-search name (step 2): its addresses are rewritten."""
    return qtype == TYPE_ANY and isinstance(decide(profile, qname, _TYPE_A, now, lookup), Rewrite)


def ede_options(rewrite: Rewrite | None, stale: bool) -> bytes:
    """The EDE options of step 5 (empty for a fresh, unrewritten answer)."""
    options = b""
    if rewrite is not None:
        text = rewrite.extra_text or SAFE_SEARCH_TEXT.format(engine=rewrite.engine)
        options += ede_option(rewrite.ede, text)
    if stale:
        options += ede_option(EDE_STALE_ANSWER)
    return options
