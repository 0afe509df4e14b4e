"""Who may query: client access control against the open-resolver problem (the refusal's
bytes are resolver/reply.py's)."""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable

from resolver.settings_limits import AclAction, AclConfig

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V4_BIAS = 1 << 128  # IPv4 and IPv6 share one integer line, IPv4 above all of IPv6


def address_key(ip: str) -> int | None:
    """One integer per address on a shared line; IPv4-mapped IPv6 folds onto IPv4.

    Accepts what sockets report: ``10.0.0.1``, ``::ffff:10.0.0.1``, ``fe80::1%eth0``.
    """
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big") + _V4_BIAS
    except OSError:
        pass
    try:
        raw = socket.inet_pton(socket.AF_INET6, ip.split("%", 1)[0])
    except OSError:
        return None
    if raw[:12] == b"\0" * 10 + b"\xff\xff":
        return int.from_bytes(raw[12:], "big") + _V4_BIAS
    return int.from_bytes(raw, "big")


def network_range(cidr: str) -> tuple[int, int]:
    """First and last key of a network; raises ValueError for a malformed one."""
    net = ipaddress.ip_network(cidr.split("%", 1)[0], strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED) and net.prefixlen >= 96:
        net = ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    bias = _V4_BIAS if net.version == 4 else 0
    return int(net.network_address) + bias, int(net.broadcast_address) + bias


def compile_ranges(allow: Iterable[str], deny: Iterable[str]) -> tuple[list[int], list[bool]]:
    """Flatten allow/deny networks into sorted segment starts and their verdicts.

    The most specific network wins (deny 10.9.0.0/16 inside allow 10.0.0.0/8, then allow
    10.9.8.0/24 inside that); deny wins a tie. CIDR blocks are nested or disjoint, so one
    sweep with a stack of open blocks paints every segment.
    """
    nets = [(*network_range(c), 0, True) for c in allow] + [
        (*network_range(c), 1, False) for c in deny
    ]
    # Outer blocks first at a shared start; for the very same block, deny goes on top.
    nets.sort(key=lambda n: (n[0], -(n[1] - n[0]), n[2]))
    starts, verdicts = [0], [False]
    stack: list[tuple[int, bool]] = []

    def paint(at: int, verdict: bool) -> None:
        if starts[-1] == at:
            verdicts[-1] = verdict
            if len(starts) > 1 and verdicts[-2] == verdict:
                del starts[-1], verdicts[-1]
        elif verdicts[-1] != verdict:
            starts.append(at)
            verdicts.append(verdict)

    def close_until(position: int) -> None:
        while stack and stack[-1][0] < position:
            end = stack.pop()[0]
            paint(end + 1, stack[-1][1] if stack else False)

    for first, last, _, verdict in nets:
        close_until(first)
        paint(first, verdict)
        stack.append((last, verdict))
    close_until(1 << 160)
    return starts, verdicts


class Acl:
    """Answers "may this address query us?" in one dict lookup for a repeat client.

    Built once per config snapshot; the memo is private to the instance, so a reload that
    builds a new Acl never serves a stale verdict.
    """

    __slots__ = ("config", "_starts", "_verdicts", "_memo", "_memo_size")

    def __init__(self, config: AclConfig = AclConfig(), *, memo_size: int = 65536) -> None:
        self.config = config
        self._starts, self._verdicts = compile_ranges(config.allow, config.deny)
        self._memo: dict[str, bool] = {}
        self._memo_size = memo_size

    @property
    def action(self) -> AclAction:
        """REFUSE or DROP for clients that are not allowed."""
        return self.config.action

    def allows(self, ip: str) -> bool:
        """True if ``ip`` (as the socket reports it) may be served; unparseable means no."""
        verdict = self._memo.get(ip)
        if verdict is None:
            verdict = self._decide(ip)
        return verdict

    def _decide(self, ip: str) -> bool:
        key = address_key(ip)
        verdict = key is not None and self._verdicts[bisect_right(self._starts, key) - 1]
        # Bounded: a spray of spoofed sources empties the memo instead of growing it.
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[ip] = verdict
        return verdict
