"""Tests for resolver/answer_steps.py: every path (cache hit, upstream answer, serve-stale,
UDP and TCP) applies the same policy steps. A scripted upstream on loopback answers a cloaked
name, Google and ANY; dnspython reads every answer (issue 11, findings 1 to 3; issue 13)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver import config
from resolver.app import build_resolver
from resolver.pipeline import TCP, UDP, Miss, Resolver
from resolver.state import build_state
from resolver.stats import LabelSets, Stats
from tests.stub_upstream import StubUpstream

KID, ADULT = "127.0.0.1", "127.0.0.2"
CLOAK_V4, GOOGLE_V4, SAFE_V4 = "198.51.100.66", "142.250.0.1", "216.239.38.120"
LISTENER = ("127.0.0.1", 53)


class ScriptedUpstream(StubUpstream):
    """The stub, plus: cloak.test CNAME blocked.test (A), Google and its SafeSearch name,
    and ANY for www.google.com answered with Google's real address."""

    def reply_to(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        reply, delay = super().reply_to(data, transport)
        if reply is None or self.mode != "normal":
            return reply, delay
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text().lower()
        response = dns.message.make_response(query)
        if name == "cloak.test.":
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", "blocked.test."))
            response.answer.append(dns.rrset.from_text("blocked.test.", 60, "IN", "A", CLOAK_V4))
        elif name == "www.google.com.":
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", GOOGLE_V4))
        elif name == "forcesafesearch.google.com.":
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", SAFE_V4))
        else:
            return reply, delay
        return response.to_wire(), 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as stub:
        yield stub


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop per test: the resolver's upstream sockets belong to it."""
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture
def setup(
    tmp_path: Path, upstream: ScriptedUpstream, loop: asyncio.AbstractEventLoop
) -> Iterator[tuple[Resolver, Clock]]:
    yield from _setup(tmp_path, upstream, loop, "")


@pytest.fixture
def limited(
    tmp_path: Path, upstream: ScriptedUpstream, loop: asyncio.AbstractEventLoop
) -> Iterator[tuple[Resolver, Clock]]:
    """Rate limiting on, with ANY forwarded as usual (the limiter caps nothing)."""
    yield from _setup(tmp_path, upstream, loop, "ratelimit: {any: forward}\n")


def _setup(
    tmp_path: Path, upstream: ScriptedUpstream, loop: asyncio.AbstractEventLoop, more: str
) -> Iterator[tuple[Resolver, Clock]]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "kid.yaml").write_text(
        "name: kid\ndeny: [blocked.test]\nsafe_search: {google: 'on'}\n", encoding="utf-8"
    )
    (policies / "adult.yaml").write_text("name: adult\n", encoding="utf-8")
    text = f"""
upstreams: ['{upstream.address}']
upstream: {{timeout: 0.2}}
lists: {{enabled: false}}
policies: {{dir: "{policies}"}}
cache: {{serve_stale: true, stale_window: 3600}}
clients: {{default: kid, networks: {{"{ADULT}/32": adult}}}}
"""
    cfg = config.parse(text + more, "test.yaml")
    clock = Clock()
    resolver = build_resolver(cfg, build_state(cfg), Stats(), clock)
    resolver.loop = loop  # type: ignore[attr-defined]  # for ask() below
    yield resolver, clock
    resolver.close()


def ask(resolver: Resolver, ip: str, name: str, rdtype: str, tcp: bool = False):
    """One query through the pipeline (and the upstream on a miss), read by dnspython."""
    transport = TCP if tcp else UDP
    data = dns.message.make_query(name, rdtype, use_edns=0).to_wire()
    client = resolver.client(resolver.client_table(), ip, LISTENER)
    result = resolver.answer(data, client, ip, transport)
    if isinstance(result, Miss):
        result = resolver.loop.run_until_complete(resolver.resolve(result, transport))  # type: ignore[attr-defined]
    assert isinstance(result, bytes) and result
    return dns.message.from_wire(result)


def addresses(message: dns.message.Message) -> set[str]:
    return {r.to_text() for rrset in message.answer if rrset.rdtype == 1 for r in rrset}


def ede_codes(message: dns.message.Message) -> list[int]:
    return [o.code for o in message.options if isinstance(o, dns.edns.EDEOption)]


def test_stale_answer_is_checked_for_cname_cloaking_and_counted_as_stale(
    setup: tuple[Resolver, Clock], upstream: ScriptedUpstream
) -> None:
    resolver, clock = setup
    assert addresses(ask(resolver, ADULT, "cloak.test", "A")) == {CLOAK_V4}
    clock.now += 600  # expired, inside the stale window
    upstream.mode = "servfail"
    for tcp in (False, True):
        kid = ask(resolver, KID, "cloak.test", "A", tcp)
        assert CLOAK_V4 not in addresses(kid) and not kid.answer, kid
    adult = ask(resolver, ADULT, "cloak.test", "A")
    assert addresses(adult) == {CLOAK_V4} and adult.answer[-1].ttl == 30
    answers = resolver.stats.answers
    assert answers.get(("blocked", "deny", "kid")) == 2, answers
    assert answers.get(("stale", "none", "adult")) == 1, answers
    assert not any(key[0] == "servfail" for key in answers), answers


def test_stale_answers_carry_ede_3_when_the_client_sent_edns(
    setup: tuple[Resolver, Clock], upstream: ScriptedUpstream
) -> None:
    resolver, clock = setup
    fresh = ask(resolver, ADULT, "www.example.test", "A")
    assert ede_codes(fresh) == []
    clock.now += 600
    upstream.mode = "servfail"
    stale = ask(resolver, ADULT, "www.example.test", "A")
    assert stale.rcode() == dns.rcode.NOERROR and addresses(stale) == {"192.0.2.1"}
    assert ede_codes(stale) == [3]
    client = resolver.client(resolver.client_table(), ADULT, LISTENER)
    plain = dns.message.make_query("www.example.test", "A").to_wire()  # no EDNS: no OPT
    miss = resolver.answer(plain, client, ADULT, UDP)
    assert isinstance(miss, Miss)
    got = resolver.loop.run_until_complete(resolver.resolve(miss, UDP))  # type: ignore[attr-defined]
    assert got is not None and dns.message.from_wire(got).edns == -1


@pytest.mark.parametrize("tcp", [False, True])
def test_failure_path_looks_up_the_safe_search_target_not_the_asked_name(
    setup: tuple[Resolver, Clock], upstream: ScriptedUpstream, tcp: bool
) -> None:
    resolver, clock = setup
    assert addresses(ask(resolver, ADULT, "www.google.com", "A", tcp)) == {GOOGLE_V4}
    clock.now += 600
    upstream.mode = "servfail"
    kid = ask(resolver, KID, "www.google.com", "A", tcp)
    assert GOOGLE_V4 not in addresses(kid) and kid.rcode() == dns.rcode.SERVFAIL
    # Once the kid's rewrite was cached, its stale copy is what a failure serves.
    upstream.mode = "normal"
    clock.now += 10_000  # past every stale window: fetch both afresh
    assert addresses(ask(resolver, KID, "www.google.com", "A", tcp)) == {SAFE_V4}
    clock.now += 600
    upstream.mode = "servfail"
    stale = ask(resolver, KID, "www.google.com", "A", tcp)
    assert addresses(stale) == {SAFE_V4} and ede_codes(stale) == [4, 3]


@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("limits", [False, True])
def test_any_for_a_safe_search_name_never_carries_unrewritten_addresses(
    request: pytest.FixtureRequest, upstream: ScriptedUpstream, tcp: bool, limits: bool
) -> None:
    resolver, _ = request.getfixturevalue("limited" if limits else "setup")
    assert (resolver.ratelimit is not None) is limits  # the cap must not depend on it
    adult = ask(resolver, ADULT, "www.google.com", "ANY", tcp)
    assert addresses(adult) == {GOOGLE_V4}  # the upstream does answer ANY with addresses
    kid = ask(resolver, KID, "www.google.com", "ANY", tcp)
    assert not addresses(kid) and kid.rcode() == dns.rcode.NOERROR
    assert [rrset.rdtype for rrset in kid.answer] == [dns.rdatatype.HINFO]


def test_metrics_and_the_ledger_see_a_stale_answer_as_stale_not_other() -> None:
    stats = Stats(LabelSets(profiles=frozenset({"kid"})))
    stats.record_answer(UDP, "stale", "none", "kid", 0.0)
    assert stats.snapshot()["answers"] == [[["stale", "none", "kid"], 1]]


def ask_and_settle(resolver: Resolver, ip: str, name: str, rdtype: str = "A"):
    """``ask`` from inside the loop, then wait for what it left in flight (a prefetch)."""

    async def main() -> bytes:
        data = dns.message.make_query(name, rdtype, use_edns=0).to_wire()
        client = resolver.client(resolver.client_table(), ip, LISTENER)
        result = resolver.answer(data, client, ip, UDP)
        if isinstance(result, Miss):
            result = await resolver.resolve(result, UDP)
        while resolver.inflight:
            await asyncio.sleep(0.01)
        assert isinstance(result, bytes) and result
        return result

    return dns.message.from_wire(resolver.loop.run_until_complete(main()))  # type: ignore[attr-defined]


def test_a_prefetched_safe_search_answer_is_rewritten_like_a_clients(
    setup: tuple[Resolver, Clock], upstream: ScriptedUpstream
) -> None:
    resolver, clock = setup
    assert addresses(ask_and_settle(resolver, KID, "www.google.com")) == {SAFE_V4}
    clock.now += 55  # the target's TTL is 60: the last tenth
    ask_and_settle(resolver, KID, "www.google.com")
    assert upstream.count("forcesafesearch.google.com") == 2 and resolver.stats.prefetches == 1
    clock.now += 10  # past the first answer's expiry: the refreshed rewrite answers
    refreshed = ask_and_settle(resolver, KID, "www.google.com")
    assert upstream.count("forcesafesearch.google.com") == 2
    assert addresses(refreshed) == {SAFE_V4} and ede_codes(refreshed) == [4]
    assert refreshed.answer[0].rdtype == dns.rdatatype.CNAME
    assert upstream.count("www.google.com") == 0  # never the asked name's own addresses


def test_a_prefetched_answer_is_still_checked_for_cname_cloaking(
    setup: tuple[Resolver, Clock], upstream: ScriptedUpstream
) -> None:
    resolver, clock = setup
    assert addresses(ask_and_settle(resolver, ADULT, "cloak.test")) == {CLOAK_V4}
    clock.now += 55
    ask_and_settle(resolver, ADULT, "cloak.test")  # refreshes it for every profile
    assert resolver.stats.prefetches == 1 and upstream.count("cloak.test") == 2
    clock.now += 10
    kid = ask_and_settle(resolver, KID, "cloak.test")
    assert kid.rcode() == dns.rcode.NXDOMAIN and not addresses(kid)
    assert addresses(ask_and_settle(resolver, ADULT, "cloak.test")) == {CLOAK_V4}
    assert upstream.count("cloak.test") == 2
