"""Prepared answers (the per-profile memo and the C fast path) are the general path's bytes.

A property over generated queries: names (list-blocked, keyword-blocked, scheduled, overrides,
anti-bypass, the canary, safe search, cached names, random labels under listed domains, in
random letter case), query types and classes, header flags (RD, CD, AD, opcode), EDNS (none,
or any buffer size with DO and options), message IDs, and the shipped profiles at two times
of the week. For each packet, the answer the pipeline builds for a client with neither memo
nor fast path is the reference; a real UdpListener must then send exactly those bytes for the
packet, for the same packet under another ID from another client of the profile, and for the
first packet again, whichever of memo, fast path or pipeline answers them.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import UDP, Miss, Resolver
from resolver.state import build_state
from resolver.stats import Stats
from resolver.transport.udp import UdpListener
from tests.stub_upstream import StubUpstream

POLICIES = Path(__file__).resolve().parents[1] / "policies"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
TIMES = {
    "weekend-noon": datetime(2026, 12, 5, 12, 0, tzinfo=HCM).timestamp(),
    "school-night": datetime(2026, 12, 1, 22, 0, tzinfo=HCM).timestamp(),
}
PROFILES = ("under16", "school", "isp-default")
LISTENER = ("127.0.0.1", 53)
OVERRIDES = 'allow: [www.pornhub.com, "*.cdn.pornhub.com"]\ndeny: [denied.example.test]\n'

LISTED = ("pornhub.com", "xvideos.com", "003755.xyz", "datarouter.ol.epicgames.com")
CACHED = ("www.example.test", "a.example.test", "nx.example.test", "nodata.example.test",
          "cname.example.test", "www.google.com", "www.youtube.com", "www.bing.com",
          "www.pornhub.com", "x.cdn.pornhub.com", "datarouter.ol.epicgames.com")  # fmt: skip
DECIDED = ("denied.example.test", "xn--cado-online.com", "free-casino-vn.example",
           "use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com", "resolver.arpa",
           "_dns.resolver.arpa", "status.lachan.arpa")  # fmt: skip
QTYPES = ("A", "AAAA", "MX", "TXT", "HTTPS", "ANY", "NS", "SOA", "PTR", "TYPE999")


class FixedClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False


def _resolver(tmp: Path, profile: str, wallclock: float, upstream: str) -> Resolver:
    folder = tmp / "policies"
    if not folder.exists():
        shutil.copytree(POLICIES, folder)
        under16 = folder / "under16.yaml"
        under16.write_text(under16.read_text(encoding="utf-8") + OVERRIDES, encoding="utf-8")
    text = (
        f"upstreams: ['{upstream}']\nupstream: {{timeout: 0.5}}\n"
        f"policies: {{dir: '{folder}'}}\nclients: {{default: {profile}}}\n"
    )
    cfg = config.parse(text, "prepared.yaml")
    return build_resolver(cfg, build_state(cfg), Stats(), FixedClock(), lambda: wallclock)


def _warm(resolver: Resolver) -> None:
    """Fill the cache through real misses, for every cache key shape the examples can hit."""

    async def resolve_all() -> None:
        try:
            for name in CACHED:
                for qtype in ("A", "AAAA"):
                    for do in (False, True):
                        for cd in (False, True):
                            msg = dns.message.make_query(name, qtype, use_edns=0, want_dnssec=do)
                            msg.flags |= dns.flags.CD if cd else 0
                            result = _reference(resolver, msg.to_wire())
                            if isinstance(result, Miss):
                                await resolver.resolve(result, UDP)
        finally:
            resolver.close()

    asyncio.run(resolve_all())


def _reference(resolver: Resolver, data: bytes) -> bytes | Miss | None:
    """The general path: a client of the profile with neither memo nor fast path."""
    client = resolver.client(resolver.client_table(), "127.0.0.9", LISTENER)
    client.memo, client.fast = None, None
    return resolver.answer(data, client, "127.0.0.9", UDP)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Resolver]]:
    tmp = tmp_path_factory.mktemp("prepared")
    with StubUpstream() as stub:
        built = {}
        for profile in PROFILES:
            for when, wallclock in TIMES.items():
                resolver = _resolver(tmp, profile, wallclock, stub.address)
                _warm(resolver)
                built[f"{profile}@{when}"] = resolver
        yield built


def _mixed_case(draw: Callable, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if flip else c for c, flip in zip(name, flips, strict=True))


@st.composite
def packets(draw: Callable) -> bytes:
    label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
    name = draw(
        st.one_of(
            st.sampled_from(LISTED + CACHED + DECIDED),
            st.builds(lambda a, b: f"{a}.{b}", label, st.sampled_from(LISTED)),
        )
    )
    qtype = draw(st.sampled_from(QTYPES))
    rdclass = draw(st.sampled_from(("IN", "IN", "IN", "IN", "CH", "ANY")))
    edns = draw(st.booleans())
    options: list[dns.edns.Option] = []
    if edns and draw(st.booleans()):
        cookie = draw(st.binary(min_size=8, max_size=8))
        options.append(dns.edns.GenericOption(dns.edns.COOKIE, cookie))
    if edns and draw(st.booleans()):
        options.append(dns.edns.GenericOption(dns.edns.PADDING, b"\0" * draw(st.integers(0, 32))))
    msg = dns.message.make_query(
        _mixed_case(draw, name),
        qtype,
        rdclass,
        use_edns=0 if edns else False,
        payload=draw(st.integers(512, 4096)),
        want_dnssec=edns and draw(st.booleans()),
        options=options,
    )
    msg.flags = 0
    for flag in ("RD", "CD", "AD"):
        if draw(st.booleans()):
            msg.flags |= dns.flags.Flag[flag]
    msg.set_opcode(draw(st.sampled_from((dns.opcode.QUERY,) * 6 + (dns.opcode.STATUS,))))
    msg.id = draw(st.integers(0, 0xFFFF))
    return msg.to_wire()


def test_prepared_answers_are_the_general_paths_bytes(servers: dict[str, Resolver]) -> None:
    listeners = {key: (UdpListener(r, LISTENER), Recorder()) for key, r in servers.items()}
    for listener, recorder in listeners.values():
        listener.connection_made(recorder)  # type: ignore[arg-type]
    used: Counter[str] = Counter()

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(data=packets(), key=st.sampled_from(sorted(servers)), other_id=st.integers(0, 0xFFFF))
    def agree(data: bytes, key: str, other_id: int) -> None:
        resolver = servers[key]
        listener, recorder = listeners[key]
        again = other_id.to_bytes(2, "big") + data[2:]
        expected = [_reference(resolver, data), _reference(resolver, again)]
        if any(isinstance(e, Miss) for e in expected):
            used["miss"] += 1  # the listener would start a miss: not a prepared answer
            return
        recorder.sent.clear()
        general, fast = resolver.answer, listener._send_prepared_block
        calls: list[bytes] = []
        resolver.answer = lambda d, *rest: calls.append(d) or general(d, *rest)  # type: ignore[method-assign]

        def counted_fast(*args: object) -> bool:
            taken = fast(*args)  # type: ignore[arg-type]
            used["fast"] += taken
            return taken

        listener._send_prepared_block = counted_fast  # type: ignore[method-assign]
        try:
            listener.datagram_received(data, ("127.0.0.21", 40000))
            listener.datagram_received(again, ("127.0.0.22", 40001))  # same profile
            listener.datagram_received(data, ("127.0.0.21", 40000))
        finally:
            del resolver.answer, listener._send_prepared_block
        assert listener.errors == 0
        assert recorder.sent == [
            e for e in (expected[0], expected[1], expected[0]) if e is not None
        ]
        used["prepared"] += 3 - len(calls)

    agree()
    # Both shortcuts were taken often, not only the pipeline (memo = prepared - fast).
    assert used["prepared"] - used["fast"] >= 100 and used["fast"] >= 50, used
