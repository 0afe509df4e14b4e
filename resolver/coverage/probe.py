"""Active probes: ask each site's resolver for the canary TXT and a name every profile blocks.

A site that reports nothing may still filter, and one that reports may have been bypassed, so
the probe looks from outside. ``blocked`` means NXDOMAIN, NODATA or a null address (0.0.0.0,
::) for the test name. The default test name is an adult site listed in the bundled ``adult``
list (blocked by every shipped profile) that always resolves on the open internet, so an
NXDOMAIN for it can only come from a filter; a dead malware domain would not tell a filter from
an ordinary resolver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiodns
import aiodns.error

from resolver.coverage.canary import CANARY_NAME, CanaryError, CanaryStatus, parse_canary

TEST_NAME = "pornhub.com"
NULL_ADDRESSES = frozenset({"0.0.0.0", "::"})
_NO_ANSWER = {aiodns.error.ARES_ETIMEOUT, aiodns.error.ARES_ECONNREFUSED}
_QTYPES = {"TXT": 16, "A": 1, "AAAA": 28}
_BLOCKED_CODES = {aiodns.error.ARES_ENOTFOUND: "NXDOMAIN", aiodns.error.ARES_ENODATA: "NODATA"}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one site's resolver answered."""

    reachable: bool
    canary: CanaryStatus | None
    canary_error: str  # why there is no canary, "" when there is one
    test_blocked: bool | None  # None when the test query got no usable answer
    test_answer: str  # NXDOMAIN, NODATA, the addresses, or the error
    seconds: float


@dataclass(frozen=True, slots=True)
class _Answer:
    ok: bool  # a DNS response arrived (any rcode)
    records: tuple[str | bytes, ...]
    code: str  # "" on success, else NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout...


async def _ask(resolver: aiodns.DNSResolver, name: str, qtype: str) -> _Answer:
    try:
        result = await resolver.query_dns(name, qtype)
    except aiodns.error.DNSError as exc:
        code = exc.args[0] if exc.args else None
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        return _Answer(code not in _NO_ANSWER, (), _BLOCKED_CODES.get(code, text))
    records = tuple(_rdata(r.data) for r in result.answer if r.type == _QTYPES[qtype])
    return _Answer(True, records, "" if records else "NODATA")


def _rdata(data: object) -> str | bytes:
    for attr in ("addr", "data", "text"):
        value = getattr(data, attr, None)
        if isinstance(value, str | bytes):
            return value
    return str(data)


def _blocked(answer: _Answer) -> tuple[bool | None, str]:
    if answer.code in ("NXDOMAIN", "NODATA"):
        return True, answer.code
    if not answer.records:
        return None, answer.code
    addresses = sorted(str(r) for r in answer.records)
    return all(a in NULL_ADDRESSES for a in addresses), " ".join(addresses)


def _canary(answer: _Answer) -> tuple[CanaryStatus | None, str]:
    if not answer.records:
        return None, answer.code or "no canary answer"
    try:
        return parse_canary(answer.records), ""
    except CanaryError as exc:
        return None, str(exc)


async def probe_resolver(
    address: str, port: int, *, canary_name: str = CANARY_NAME, test_name: str = TEST_NAME,
    timeout: float = 2.0, tries: int = 2, clock: Callable[[], float] = time.monotonic,
) -> ProbeResult:  # fmt: skip
    """Probe one resolver: canary TXT and test-name A, concurrently, bounded by the timeout."""
    started = clock()
    resolver = aiodns.DNSResolver(
        nameservers=[address], udp_port=port, tcp_port=port, timeout=timeout, tries=tries
    )
    try:
        canary, test = await asyncio.gather(
            _ask(resolver, canary_name, "TXT"), _ask(resolver, test_name, "A")
        )
    finally:
        await resolver.close()
    status, why = _canary(canary)
    blocked, shown = _blocked(test)
    return ProbeResult(canary.ok or test.ok, status, why, blocked, shown, clock() - started)


async def probe_all(
    targets: Sequence[tuple[str, int]], *, concurrency: int = 256, **options: object
) -> list[ProbeResult]:
    """Probe many resolvers at once (at most ``concurrency`` in flight), results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(target: tuple[str, int]) -> ProbeResult:
        async with gate:
            return await probe_resolver(target[0], target[1], **options)  # type: ignore[arg-type]

    return list(await asyncio.gather(*(one(t) for t in targets)))
