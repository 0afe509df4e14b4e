"""Upstream resolvers: addresses, forwarding policy, health with back-off, our query, and
the question check every reply must pass (RFC 5452). The exchanges themselves are driven by
forward.Dispatcher."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .reply import opt_record
from .settings import ForwardPolicy, UpstreamAddress
from .wire import CD, HEADER_LEN

log = logging.getLogger(__name__)


class Upstream:
    """One upstream server: its sockets, health and counters."""

    def __init__(self, address: UpstreamAddress, policy: ForwardPolicy, clock: Callable[[], float]):
        self.address = address
        self.policy = policy
        self._clock = clock
        self.failures = 0
        self.down_until = 0.0
        self.queries = 0
        self.errors = 0
        self.mismatched = 0
        self.tcp_fallbacks = 0
        self.latency_sum = 0.0
        self.caps = policy.case_randomization  # 0x20 towards this upstream
        self._unreported = 0  # failures since the last log line
        self._reported_at = float("-inf")

    def is_up(self, now: float) -> bool:
        return now >= self.down_until

    def record_success(self, rtt: float) -> None:
        self.failures = 0
        self.down_until = 0.0
        self.latency_sum += rtt

    def record_failure(self, now: float, reason: str = "") -> int:
        """Count a failure; returns how many to report now (0: not yet, the log is rate-limited)."""
        self.errors += 1
        self.failures += 1
        policy = self.policy
        if self.failures >= policy.down_after:
            extra = self.failures - policy.down_after
            self.down_until = now + min(policy.down_max, policy.down_for * (2 ** min(extra, 16)))
        self._unreported += 1
        if now - self._reported_at < policy.report_every:
            return 0
        self._reported_at, due, self._unreported = now, self._unreported, 0
        return due

    def case_lost(self) -> bool:
        """A reply had our question in another letter case: True to ask again without 0x20.

        Reaching this check takes the right port and ID, so a forger who could use it to
        turn 0x20 off could have forged the answer anyway; the upstream that simply does not
        keep case (some middleboxes and old servers) gets plain lowercase from now on.
        """
        if not self.caps:
            return False
        self.caps = False
        log.warning("upstream %s does not keep the letter case of questions: 0x20 off", self)
        return True

    def __str__(self) -> str:
        return str(self.address)


def same_question(reply: bytes, question: bytes) -> bool:
    """Does the reply's question equal ours (name case-insensitively, type and class exactly)?"""
    end = HEADER_LEN + len(question)
    return (
        reply[HEADER_LEN : end - 4].lower() == question[:-4]
        and reply[end - 4 : end] == question[-4:]
    )


def build_upstream_query(key: bytes, flags: int, do: bool, udp_size: int) -> bytes:
    """Our query for a cache key: lowercase name, RD set, CD copied, EDNS with DO copied."""
    question = key[:-1]
    header_flags = 0x0100 | (flags & CD)
    return b"".join(
        (
            b"\x00\x00",
            header_flags.to_bytes(2, "big"),
            b"\x00\x01\x00\x00\x00\x00\x00\x01",
            question,
            opt_record(udp_size, 0, do),
        )
    )
