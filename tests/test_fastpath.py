"""The blocked-name fast path (resolver/fastpath.py) against the pipeline it short-cuts.

Real bundled lists and the shipped under16 profile (plus an allow and a deny override) on a
real UdpListener with a recording transport: every answer the fast path sends must be the
exact bytes the pipeline builds for that packet, its statistics the same, and every name the
pipeline must decide itself (overrides, safe search, schedules, the canary) must not be
taken.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dns.message
import dns.rcode
import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.fastpath import static_table
from resolver.pipeline import UDP, Resolver
from resolver.proxyv2 import build_proxy_v2
from resolver.querystate import ClientState
from resolver.state import build_state
from resolver.stats import Stats
from resolver.transport.udp import UdpListener

POLICIES = Path(__file__).resolve().parents[1] / "policies"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
SCHOOL_NIGHT = datetime(2026, 12, 1, 22, 0, tzinfo=HCM).timestamp()  # Tuesday: games off
WEEKEND_NOON = datetime(2026, 12, 5, 12, 0, tzinfo=HCM).timestamp()  # Saturday: games on
LISTENER, CLIENT = ("127.0.0.1", 53), ("127.0.0.1", 40000)
GAME = "datarouter.ol.epicgames.com"  # bundled games list; under16 schedules games


class Recorder:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False


def _policies(tmp: Path, extra: str) -> Path:
    folder = tmp / "policies"
    shutil.copytree(POLICIES, folder, dirs_exist_ok=True)
    under16 = folder / "under16.yaml"
    under16.write_text(under16.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return folder


def _resolver(
    tmp: Path, now: list[float], extra: str, more: str = "clients: {default: under16}\n"
) -> Resolver:
    """A resolver on the bundled lists with the shipped profiles (``extra`` appended to
    under16) and the config lines ``more``; ``now[0]`` is the wall clock schedules see."""
    text = f"upstreams: ['127.0.0.1:9']\npolicies: {{dir: '{_policies(tmp, extra)}'}}\n{more}"
    cfg = config.parse(text, "fast.yaml")
    return build_resolver(cfg, build_state(cfg), Stats(), wallclock=lambda: now[0])


def _listen(resolver: Resolver) -> tuple[UdpListener, Recorder]:
    listener, recorder = UdpListener(resolver, LISTENER), Recorder()
    listener.connection_made(recorder)  # type: ignore[arg-type]
    return listener, recorder


def _spy(resolver: Resolver) -> list[bytes]:
    """The packets that reach the general pipeline (Resolver.answer) from now on."""
    calls: list[bytes] = []
    general = resolver.answer
    resolver.answer = lambda data, *rest: calls.append(data) or general(data, *rest)  # type: ignore[method-assign]
    return calls


OVERRIDES = 'allow: [www.pornhub.com, "*.cdn.pornhub.com"]\ndeny: [denied.example.test]\n'


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Resolver, UdpListener, Recorder, list[float]]:
    now = [WEEKEND_NOON]
    resolver = _resolver(tmp_path, now, OVERRIDES)
    listener, recorder = _listen(resolver)
    return resolver, listener, recorder, now


def _reference(resolver: Resolver, data: bytes) -> bytes | None:
    """The pipeline's own answer: a client with neither prepared answers nor fast path."""
    client = resolver.client(resolver.client_table(), CLIENT[0], LISTENER)
    client.memo, client.fast = None, None
    answer = resolver.answer(data, client, CLIENT[0], UDP)
    assert answer is None or isinstance(answer, bytes)
    return answer


def _client(resolver: Resolver, listener: UdpListener) -> ClientState:
    client = listener._clients.get(CLIENT[0]) or resolver.client(
        listener._clients, CLIENT[0], LISTENER
    )
    assert client.fast is not None
    return client


def _query(name: str, rdtype: str = "A", **kw: object) -> bytes:
    msg = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    msg.id = 0x1234
    return msg.to_wire()


def _with_flags(data: bytes, rd: bool, cd: bool) -> bytes:
    flags = (data[2] & ~0x01 | (0x01 if rd else 0), data[3] & ~0x10 | (0x10 if cd else 0))
    return data[:2] + bytes(flags) + data[4:]


BLOCKED: list[Callable[[], bytes]] = [
    lambda: _query("pornhub.com"),
    lambda: _query("cdn.PornHub.com", "AAAA"),  # "*.cdn.pornhub.com" is only below it
    lambda: _query("x.www.pornhub.com"),  # the allow override is for www.pornhub.com only
    lambda: _query("a.b.pornhub.com", "MX", use_edns=0),
    lambda: _query("pornhub.com", "HTTPS", use_edns=0, want_dnssec=True),
    lambda: _with_flags(_query("pornhub.com", use_edns=0), rd=False, cd=True),
    lambda: _with_flags(_query("xvideos.com", "TXT"), rd=True, cd=True),
]


@pytest.mark.parametrize("build", BLOCKED)
def test_fast_answers_are_the_pipelines_bytes(setup, build) -> None:  # type: ignore[no-untyped-def]
    resolver, listener, recorder, _ = setup
    data = build()
    client = _client(resolver, listener)
    assert listener._send_prepared_block(data, CLIENT, client)
    assert listener._send_prepared_block(data, CLIENT, client)  # the prepared entry, reused
    expected = _reference(resolver, data)
    assert recorder.sent == [expected, expected]
    assert dns.message.from_wire(expected).rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize(
    "name",
    [
        "www.pornhub.com",  # the profile's allow override, on a listed name
        "x.cdn.pornhub.com",  # a wildcard allow override
        "denied.example.test",  # a deny override: the pipeline blocks it itself
        "www.google.com",  # safe search
        "status.lachan.arpa",  # the canary
        "use-application-dns.net",  # anti-bypass
        "example.com",  # not listed
    ],
)
def test_names_the_pipeline_decides_are_not_taken(setup, name) -> None:  # type: ignore[no-untyped-def]
    resolver, listener, recorder, _ = setup
    assert not listener._send_prepared_block(_query(name), CLIENT, _client(resolver, listener))
    assert recorder.sent == []


def test_scheduled_categories_follow_the_clock(setup) -> None:  # type: ignore[no-untyped-def]
    resolver, listener, recorder, now = setup
    client = _client(resolver, listener)
    for when in (WEEKEND_NOON, SCHOOL_NIGHT):
        now[0] = when
        assert not listener._send_prepared_block(_query(GAME), CLIENT, client)
    blocked = dns.message.from_wire(_reference(resolver, _query(GAME)))  # type: ignore[arg-type]
    assert blocked.rcode() == dns.rcode.NXDOMAIN  # the pipeline blocks it on a school night
    assert recorder.sent == []


def test_statistics_match_the_pipelines(setup) -> None:  # type: ignore[no-untyped-def]
    resolver, listener, _, _ = setup
    data = _query("www.xvideos.com", "AAAA")
    listener.datagram_received(_query("warm.example.test"), CLIENT)  # creates the client
    before = dict(resolver.stats.answers), [list(q) for q in resolver.stats.queries]
    listener.datagram_received(data, CLIENT)
    key = ("blocked", "adult", "under16")
    assert resolver.stats.answers[key] == before[0].get(key, 0) + 1
    assert sum(resolver.stats.queries[UDP]) == sum(before[1][UDP]) + 1


def test_a_reload_drops_prepared_blocks(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    resolver, listener, recorder, now = setup
    data = _query("pornhub.com")
    assert listener._send_prepared_block(data, CLIENT, _client(resolver, listener))
    allowed = _resolver(tmp_path / "new", now, "allow: [pornhub.com]\n")
    resolver.swap_state(allowed.state)
    assert not listener._send_prepared_block(data, CLIENT, _client(resolver, listener))
    assert len(recorder.sent) == 1


def test_profiles_with_unusual_static_names_keep_the_fast_path_off() -> None:
    assert static_table(["ok.example", "under_score.test"], ["example"]) is not None
    assert static_table(["Upper.Example"], []) is None
    assert static_table([], ["trailing.dot."]) is None


def test_prepared_answers_still_count_against_rate_limits(tmp_path: Path) -> None:
    limits = "ratelimit: {ipv4: [{prefix: 32, rate: 1, burst: 4}], action: drop}\n"
    resolver = _resolver(tmp_path, [WEEKEND_NOON], "", "clients: {default: under16}\n" + limits)
    listener, recorder = _listen(resolver)
    calls = _spy(resolver)
    keyword, blocked = _query("xn--cado-online.com"), _query("pornhub.com")
    for data in (keyword, keyword, blocked, blocked, keyword, blocked):
        listener.datagram_received(data, CLIENT)
    # 4 tokens: the pipeline, then the memo, then the fast path twice; the rest are dropped
    # (they reach the pipeline only to be counted as rate limited).
    assert len(recorder.sent) == 4 and calls == [keyword, keyword, blocked]
    assert resolver.stats.answers[("ratelimited", "none", "none")] == 2
    assert resolver.stats.answers[("blocked", "adult", "under16")] == 2


def _proxied(source: str, data: bytes) -> bytes:
    """A PROXY v2 datagram from dnsdist carrying ``data`` from subscriber ``source``."""
    return build_proxy_v2((source, 40000), ("127.0.0.1", 53), datagram=True) + data


def test_behind_dnsdist_each_subscriber_gets_prepared_answers_of_its_profile(
    tmp_path: Path,
) -> None:
    clients = (
        "clients:\n"
        "  default: isp-default\n"
        "  trusted_proxy: ['127.0.0.1/32']\n"
        "  networks: {'100.64.16.0/20': under16}\n"
    )
    resolver = _resolver(tmp_path, [WEEKEND_NOON], "", clients)
    listener, recorder = _listen(resolver)
    calls = _spy(resolver)
    casino = _query("xn--cado-online.com")  # under16's keywords only: not prepared
    for subscriber, expected in (("100.64.16.9", dns.rcode.NXDOMAIN), ("100.64.99.9", None)):
        data = _query("pornhub.com")
        for _ in range(2):
            listener.datagram_received(_proxied(subscriber, data), ("127.0.0.1", 40000))
        if expected is not None:  # under16 blocks adult: both from the fast path
            assert [dns.message.from_wire(r).rcode() for r in recorder.sent] == [expected] * 2
            assert calls == []
            listener.datagram_received(_proxied(subscriber, casino), ("127.0.0.1", 40000))
            listener.datagram_received(_proxied(subscriber, casino), ("127.0.0.1", 40000))
            assert calls == [casino]  # the second one came from the memo
            assert recorder.sent[2] == recorder.sent[3]
        else:  # isp-default blocks adult too (state-mandated): same path, its own labels
            assert len(recorder.sent) == 6 and calls == [casino]
    assert resolver.stats.answers[("blocked", "adult", "under16")] == 2
    assert resolver.stats.answers[("blocked", "adult", "isp-default")] == 2


def test_a_refused_client_gets_nothing_prepared_for_allowed_ones(tmp_path: Path) -> None:
    # Prepared answers are per profile: a client outside the access list whose packet is
    # byte-identical to an allowed client's must still be refused, never answered from them.
    acl = "clients: {default: under16}\nacl: {allow: [127.0.0.2/32]}\n"
    listener, recorder = _listen(_resolver(tmp_path, [WEEKEND_NOON], "", acl))
    blocked, keyword = _query("pornhub.com"), _query("xn--cado-online.com")
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"):
        listener.datagram_received(blocked, (source, 40000))
        listener.datagram_received(keyword, (source, 40000))  # memoised for 127.0.0.2
    rcodes = [dns.message.from_wire(r).rcode() for r in recorder.sent]
    refused, nxdomain = dns.rcode.REFUSED, dns.rcode.NXDOMAIN
    assert rcodes == [nxdomain, nxdomain, refused, refused] * 2
