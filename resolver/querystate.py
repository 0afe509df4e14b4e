"""The small objects one query carries through the pipeline, and helpers around them."""

from __future__ import annotations

from collections.abc import Callable

from .forward import Deliver
from .policy.decision import Block, Reason, Rewrite
from .policy.profile import Profile
from .ratelimit import Verdict
from .response import ScannedAnswer, question_end, scan_answer
from .settings import ServePolicy  # noqa: F401 - the pipeline imports it from here
from .stats import LabelSets, Stats
from .wire import Query, WireError, wire_to_text

UDP, TCP = 0, 1


class ClientState:
    """What a client address gets on one listener, until the next reload."""

    __slots__ = (
        "profile", "memo", "stream_memo", "allowed", "trusted_ecs", "proxy", "fast", "classify",
        "static", "limit", "listener",
    )  # fmt: skip

    def __init__(
        self,
        profile: Profile,
        memo: dict | None,
        allowed: bool,
        trusted_ecs: bool,
        proxy: bool = False,
        listener: tuple[str, int] = ("", 0),
    ):
        self.profile = profile
        self.listener = listener  # where the query arrived: trusted ECS keeps it in the choice
        self.memo = memo  # the profile's prepared answers; None when they may not be used
        # The same for DoT and DoH, whose answers are never cut to the UDP size (Resolver.client)
        self.stream_memo: dict | None = None
        self.allowed = allowed
        self.trusted_ecs = trusted_ecs
        self.proxy = proxy  # a trusted front end: its packets start with a PROXY v2 header
        # The blocked-name fast path (resolver/fastpath.py), set by Resolver.client() when
        # this client may use it: prepared blocks by classify() key, the index's classify,
        # and the profile's static names.
        self.fast: dict[int, tuple | bool] | None = None
        self.classify: Callable[[bytes, object], int] | None = None
        self.static: object = None
        # With rate limits and prepared answers, the transport asks the limiter itself (once
        # per packet, before any prepared answer) and hands its verdict to Resolver.answer.
        self.limit: Callable[[str], Verdict] | None = None


class Miss:
    """A query that needs the upstreams, and what its answer must still go through."""

    __slots__ = ("query", "profile", "received", "rewrite", "ip", "label")

    def __init__(self, query: Query, profile: Profile, received: float, rewrite: Rewrite | None):
        self.query = query
        self.profile = profile
        self.received = received
        self.rewrite = rewrite
        self.ip = ""  # set only when the query log is on
        self.label = ("allowed", "none")  # (action, category) to count it under


class Waiter:
    __slots__ = ("query", "transport", "deliver", "profile", "received", "rewrite", "ip", "label")

    def __init__(
        self,
        query: Query,
        transport: int,
        deliver: Deliver | None,
        profile: Profile,
        received: float,
        rewrite: Rewrite | None,
    ):
        self.query = query
        self.transport = transport
        self.deliver = deliver  # None for a prefetch: the answer only refreshes the cache
        self.profile = profile
        self.received = received
        self.rewrite = rewrite
        self.ip = ""
        self.label = ("allowed", "none")


class LoggedStats(Stats):
    """Stats that also remember the last answer's labels, for the opt-in query log."""

    __slots__ = ("last",)

    def __init__(self, labels: LabelSets | None = None) -> None:
        super().__init__(labels)
        self.last: tuple[str, str, str] = ("", "", "")

    def record_answer(
        self, transport: int, action: str, category: str, profile: str, seconds: float
    ) -> None:
        super().record_answer(transport, action, category, profile, seconds)
        self.last = (action, category, profile)


def bypass_kind(block: Block) -> str | None:
    """The bounded anti-bypass label of a block, or None for an ordinary block."""
    if block.reason is Reason.BYPASS:
        if block.rule.startswith("use-application-dns"):
            return "canary"  # Firefox's DoH canary
        if "icloud" in block.rule:
            return "private_relay"
        return "doh"  # resolver.arpa: discovery of an encrypted resolver (RFC 9462)
    if block.category == "vpn-proxy":
        return "vpn"
    if block.category == "doh":
        return "doh"
    return None


def question_of(response: bytes) -> tuple[str, int]:
    """The question of an answer we built (for the query log; not the hot path)."""
    try:
        end = question_end(response)
    except WireError:
        return "", 0
    return wire_to_text(response[12 : end - 4]).lower(), int.from_bytes(
        response[end - 4 : end - 2], "big"
    )


def parse_reply(reply: bytes) -> ScannedAnswer:
    """An upstream reply split for caching (raises WireError for a malformed one)."""
    return scan_answer(reply, question_end(reply))
