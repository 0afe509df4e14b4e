"""Renewed prepared answers (PreparedAnswers.renew) are the pipeline's answers, counted alike.

A cache hit's prepared answer is valid until its TTLs tick; the next identical packet makes it
again from the same cache entry without the pipeline (issue #13). Here a real UdpListener
answers cached names (several types, EDNS, DO, CD) while the clock moves by fractions of a
second and whole seconds, and the wall clock crosses a school-night schedule: each answer
must be the bytes the general path gives at that moment, every statistic must move exactly as
the general path moves it, and the hit in a name's last tenth of TTL must still start its
prefetch.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import shutil
from pathlib import Path

import dns.flags
import dns.message

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import UDP, Miss, Resolver
from resolver.state import build_state
from resolver.stats import Stats
from resolver.transport.udp import UdpListener
from tests.stub_upstream import StubUpstream
from tests.test_prepared_answers_property import (
    LISTENER,
    POLICIES,
    TIMES,
    Recorder,
    _reference,
)

NAMES = ("www.example.test", "nx.example.test", "nodata.example.test", "cname.example.test",
         "www.google.com", "www.youtube.com", "datarouter.ol.epicgames.com",
         "x.ttl20.example.test")  # fmt: skip
CLIENT = ("127.0.0.31", 40000)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _packets() -> list[bytes]:
    packets = []
    for name in NAMES:
        for qtype in ("A", "AAAA", "MX"):
            for edns, do, cd in ((False, False, False), (True, False, False),
                                 (True, True, False), (True, False, True)):  # fmt: skip
                msg = dns.message.make_query(name, qtype, use_edns=0 if edns else False,
                                             want_dnssec=do, payload=1232)  # fmt: skip
                if cd:
                    msg.flags |= dns.flags.CD
                msg.id = 7
                packets.append(msg.to_wire())
    return packets


def _counts(resolver: Resolver) -> dict:
    """What the metrics export of answering (the cache's own hit count is not exported, and
    a prepared answer never counted it)."""
    stats = resolver.stats
    return copy.deepcopy({
        "queries": stats.queries, "answers": stats.answers, "durations": stats.durations,
        "sums": stats.duration_sums, "hits": stats.cache_hits, "misses": stats.cache_misses,
        "prefetches": stats.prefetches, "rewrites": stats.safesearch_rewrites,
    })  # fmt: skip


def _delta(before: dict, after: dict) -> dict:
    def sub(a: object, b: object) -> object:
        if isinstance(a, dict):
            return {k: sub(a.get(k, 0), b.get(k, 0)) for k in set(a) | set(b)}  # type: ignore[attr-defined]
        if isinstance(a, (list, tuple)):
            return [sub(x, y) for x, y in zip(a, b, strict=True)]  # type: ignore[call-overload]
        return a - b  # type: ignore[operator]

    return {key: sub(after[key], before[key]) for key in after}


def test_renewed_answers_are_the_pipelines(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    clock, wall = Clock(5000.0), Clock(TIMES["weekend-noon"])
    packets = _packets()

    async def run(upstream: str) -> None:
        text = f"upstreams: ['{upstream}']\npolicies: {{dir: '{folder}'}}\nclients: {{default: under16}}\n"
        cfg = config.parse(text, "renewal.yaml")
        resolver = build_resolver(cfg, build_state(cfg), Stats(), clock, wall)
        listener, recorder = UdpListener(resolver, LISTENER), Recorder()
        listener.connection_made(recorder)  # type: ignore[arg-type]
        try:
            for data in packets:  # fill the cache through real misses
                result = _reference(resolver, data)
                if isinstance(result, Miss):
                    await resolver.resolve(result, UDP)
            changed, prefetches = 0, 0
            renewed: list[bytes] = []
            renew = resolver.renew

            def counted(data: bytes, *rest: object) -> bytes | None:
                response = renew(data, *rest)  # type: ignore[arg-type]
                if response is not None:
                    renewed.append(response)
                return response

            resolver.renew = counted  # type: ignore[method-assign]
            previous: dict[bytes, bytes] = {}
            # 0.4 s: still the prepared answer; then past the next second of age, many times;
            # 16 s later the wall clock is a school night (games blocked by schedule), and at
            # 18.6 s the ttl20 name is in its last tenth of TTL: the pipeline's, with a
            # prefetch, whose new entry answers at 19.1 s.
            for step in (0.0, 0.4, 0.7, 1.0, 2.5, 0.2, 11.0, 1.3, 1.5, 0.5):
                clock.now += step
                if clock.now - 5000.0 > 16:
                    wall.now = TIMES["school-night"]
                for number, data in enumerate(packets):
                    data = (number + 100).to_bytes(2, "big") + data[2:]
                    recorder.sent.clear()
                    before = _counts(resolver)
                    listener.datagram_received(data, CLIENT)
                    middle = _counts(resolver)
                    expected = _reference(resolver, data)
                    assert not isinstance(expected, Miss), (step, data)
                    assert recorder.sent == ([expected] if expected is not None else [])
                    prefetches += middle["prefetches"] - before["prefetches"]
                    middle["prefetches"] = before["prefetches"]  # one per entry: the first
                    after = _counts(resolver)
                    after["prefetches"] = middle["prefetches"]
                    assert _delta(before, middle) == _delta(middle, after), data
                    if previous.get(data[2:], expected) != expected:
                        changed += 1
                    if expected is not None:
                        previous[data[2:]] = expected
                await asyncio.sleep(0.05)  # prefetches complete
            # most were renewed, not sent through the pipeline
            assert len(renewed) >= 100, len(renewed)
            # renewed memo entries stay out of the collector's lists, as _remember's do
            # (tests/test_gc_settings.py): nothing in them leads back to them
            renewable = [e for e in listener._clients[CLIENT[0]].memo.values() if e[5]]  # type: ignore[union-attr]
            assert renewable
            assert not any(gc.is_tracked(e) or gc.is_tracked(e[5]) for e in renewable)
            assert changed >= 50, changed  # TTLs counted down, blocks took over
            assert prefetches >= 1  # started by the listener's packet, not the reference's
        finally:
            resolver.close()

    with StubUpstream() as stub:
        asyncio.run(run(stub.address))
