"""End to end: anti-bypass answers and counters, CNAME cloaking, monitor_only, serve-stale.

One real ``lachan serve`` (bundled lists, shipped profiles plus a monitor-only pilot profile,
metrics on) forwards to a stub "internet" that also answers a few allowed names with CNAME
chains ending in listed names. Serve-stale runs its own instances per case, because it has to
take the upstream away. dnspython asks; /metrics is read over HTTP and parsed.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset
import pytest
from e2e_helpers import (
    INTERNET_TTL,
    INTERNET_V4,
    InternetStub,
    LachanProcess,
    StubUpstream,
    addresses,
    ask,
    compiled_state_dir,
    copy_policies,
    ede,
    free_port,
    rcode,
    start_lachan,
    stop_checked,
    try_ask,
)
from prometheus_client.parser import text_string_to_metric_families

ADULT = "003755.xyz"  # shadowwhisperer-adult (bundled), as in test_e2e_filtering.py
GAMBLING = "188bet.vote"  # hostsvn-gambling (bundled)
PILOT_FROM, UNDER16_FROM = "127.0.0.21", "127.0.0.1"

PILOT_PROFILE = "name: pilot\nblock: [adult, gambling]\nmonitor_only: true\n"

# Allowed names the stub answers with a CNAME chain into a listed name (CNAME cloaking:
# a tracker or a blocked site hidden behind an innocent first-party name).
CLOAKED: dict[str, tuple[str, ...]] = {
    "metrics.cloak-e2e.org": ("edge.cloak-e2e.net", ADULT),
    "cdn.cloak2-e2e.org": ("www." + GAMBLING,),  # a subdomain of a listed name
}
CLOAK_V4 = "198.51.100.66"


class CloakingStub(InternetStub):
    """The internet stub, plus CLOAKED names answered with their CNAME chain and one address."""

    def reply_to(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        reply, delay = super().reply_to(data, transport)
        if reply is None or self.mode != "normal":
            return reply, delay
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text().lower().rstrip(".")
        if name not in CLOAKED:
            return reply, delay
        response = dns.message.make_response(query)
        owner = name
        for target in CLOAKED[name]:
            response.answer.append(
                dns.rrset.from_text(owner + ".", 300, "IN", "CNAME", target + ".")
            )
            owner = target
        if query.question[0].rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(owner + ".", 300, "IN", "A", CLOAK_V4))
        return response.to_wire(max_size=65535), 0.0


@dataclass
class Setup:
    port: int
    metrics_url: str
    stub: StubUpstream


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    state = compiled_state_dir(tmp_path_factory.getbasetemp())
    work = tmp_path_factory.mktemp("e2e-gaps")
    policies = copy_policies(work / "policies", {"pilot": PILOT_PROFILE})
    metrics_port = free_port(("127.0.0.1",))
    config = f"""
site: {{id: e2e-gaps, kind: school}}
lists: {{state_dir: "{state}"}}
policies: {{dir: "{policies}"}}
metrics: {{listen: "127.0.0.1:{metrics_port}"}}
clients:
  default: under16
  networks: {{"{PILOT_FROM}/32": pilot, "127.0.0.2/32": isp-default}}
"""
    with CloakingStub() as stub:
        process = start_lachan(work, stub.address, config)
        try:
            yield Setup(process.port, f"http://127.0.0.1:{metrics_port}/metrics", stub)
        finally:
            stop_checked(process)


def samples(url: str, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of ``metric`` from /metrics, keyed by its labels minus site/site_kind."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode("utf-8")
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric:
                labels = {k: v for k, v in sample.labels.items() if k not in ("site", "site_kind")}
                found[tuple(sorted(labels.items()))] = sample.value
    return found


def value(url: str, metric: str, **labels: str) -> float:
    return samples(url, metric).get(tuple(sorted(labels.items())), 0.0)


def soa_mname(message: dns.message.Message) -> str:
    """The MNAME of the one SOA in the authority section (lachan's synthesized SOA)."""
    [rrset] = [r for r in message.authority if r.rdtype == dns.rdatatype.SOA]
    return str(rrset[0].mname.to_text())


# -- 1. anti-bypass ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "qtype", "kind"),
    [
        ("mask.icloud.com", "A", "private_relay"),
        ("mask-h2.icloud.com", "AAAA", "private_relay"),
        ("MASK.iCloud.com", "HTTPS", "private_relay"),
        ("use-application-dns.net", "A", "canary"),
    ],
)
def test_bypass_names_are_nxdomain_and_counted(
    env: Setup, name: str, qtype: str, kind: str
) -> None:
    before = value(env.metrics_url, "lachan_bypass_attempts_total", kind=kind)
    reply = ask(env.port, name, qtype, source=UNDER16_FROM)
    assert rcode(reply) == "NXDOMAIN" and not reply.answer
    assert soa_mname(reply).endswith("lachan.arpa.")
    assert ede(reply) == [(17, "lachan: blocked rule=bypass profile=under16; help: 111")]
    assert env.stub.count(name) == 0  # answered locally: the upstream never saw it
    after = value(env.metrics_url, "lachan_bypass_attempts_total", kind=kind)
    assert after - before == 1.0


@pytest.mark.parametrize(
    ("name", "qtype"),
    [("resolver.arpa", "SVCB"), ("_dns.resolver.arpa", 64), ("_dns.resolver.arpa", "A")],
)
def test_designated_resolver_discovery_is_nodata_and_counted_as_doh(
    env: Setup, name: str, qtype: str | int
) -> None:
    before = value(env.metrics_url, "lachan_bypass_attempts_total", kind="doh")
    reply = ask(env.port, name, qtype, source=UNDER16_FROM)
    assert rcode(reply) == "NOERROR" and not reply.answer  # NODATA (RFC 9462: stay on Do53)
    assert soa_mname(reply).endswith("lachan.arpa.")
    assert [code for code, _ in ede(reply)] == [17]
    after = value(env.metrics_url, "lachan_bypass_attempts_total", kind="doh")
    assert after - before == 1.0


def test_repeated_bypass_packets_are_all_counted(env: Setup) -> None:
    # The same question from the same client within a second is served from the prepared
    # answer memo; every one of them must still be counted.
    before = value(env.metrics_url, "lachan_bypass_attempts_total", kind="canary")
    for _ in range(3):
        reply = ask(env.port, "use-application-dns.net", source="127.0.0.31")
        assert rcode(reply) == "NXDOMAIN"
    after = value(env.metrics_url, "lachan_bypass_attempts_total", kind="canary")
    assert after - before == 3.0


def test_isp_profile_keeps_only_ddr(env: Setup) -> None:
    # isp-default turns the Firefox canary and Private Relay switches off, DDR stays on.
    assert addresses(ask(env.port, "mask.icloud.com", source="127.0.0.2")) == [INTERNET_V4]
    assert addresses(ask(env.port, "use-application-dns.net", source="127.0.0.2")) == [INTERNET_V4]
    ddr = ask(env.port, "_dns.resolver.arpa", "SVCB", source="127.0.0.2")
    assert rcode(ddr) == "NOERROR" and not ddr.answer


# -- 2. CNAME cloaking -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "category"), [(n, c) for n, c in zip(CLOAKED, ("adult", "gambling"), strict=True)]
)
def test_cname_cloaking_is_blocked_first_and_from_cache(
    env: Setup, name: str, category: str
) -> None:
    before = value(env.metrics_url, "lachan_answers_total",
                   action="blocked", category=category, profile="under16")  # fmt: skip
    for attempt in ("miss", "cached", "cached again"):
        reply = ask(env.port, name, source=UNDER16_FROM)
        assert rcode(reply) == "NXDOMAIN", (attempt, reply)
        assert not reply.answer and CLOAK_V4 not in reply.to_text(), attempt
        [(code, text)] = ede(reply)
        assert code == 17 and f"category={category} profile=under16" in text, (attempt, text)
    assert env.stub.count(name, "A") == 1  # the second and third came from lachan's cache
    after = value(env.metrics_url, "lachan_answers_total",
                  action="blocked", category=category, profile="under16")  # fmt: skip
    assert after - before == 3.0


def test_cname_chain_into_a_listed_name_is_allowed_for_a_profile_without_that_category(
    env: Setup,
) -> None:
    # isp-default does not block gambling: the same chain resolves for its clients.
    reply = ask(env.port, "cdn.cloak2-e2e.org", source="127.0.0.2")
    assert rcode(reply) == "NOERROR" and addresses(reply) == [CLOAK_V4]


# -- 3. monitor_only ---------------------------------------------------------------------------
def test_monitor_only_answers_listed_names_and_counts_them(env: Setup) -> None:
    url = env.metrics_url
    before = {c: value(url, "lachan_answers_total", action="monitored", category=c,
                       profile="pilot") for c in ("adult", "gambling")}  # fmt: skip
    for name in (ADULT, "www." + ADULT, GAMBLING):
        reply = ask(env.port, name, source=PILOT_FROM)
        assert rcode(reply) == "NOERROR" and addresses(reply) == [INTERNET_V4], name
        assert not ede(reply), name
        assert reply.answer[0].ttl <= INTERNET_TTL
    # The same names are blocked for everyone else: the pilot only changes the pilot.
    assert rcode(ask(env.port, ADULT, source=UNDER16_FROM)) == "NXDOMAIN"
    after = {c: value(url, "lachan_answers_total", action="monitored", category=c,
                      profile="pilot") for c in ("adult", "gambling")}  # fmt: skip
    assert after["adult"] - before["adult"] == 2.0
    assert after["gambling"] - before["gambling"] == 1.0
    assert value(url, "lachan_answers_total", action="blocked", category="adult",
                 profile="pilot") == 0.0  # fmt: skip


def test_monitor_only_counts_every_repeat(env: Setup) -> None:
    url = env.metrics_url
    name = "repeat." + GAMBLING
    before = value(url, "lachan_answers_total", action="monitored", category="gambling",
                   profile="pilot")  # fmt: skip
    ask(env.port, name, source=PILOT_FROM)  # the miss: fills the cache
    for _ in range(3):  # cache hits, then identical packets within a second (the memo)
        assert addresses(ask(env.port, name, source=PILOT_FROM)) == [INTERNET_V4]
    after = value(url, "lachan_answers_total", action="monitored", category="gambling",
                  profile="pilot")  # fmt: skip
    assert after - before == 4.0


def test_monitor_only_counts_each_answer_once(env: Setup) -> None:
    url = env.metrics_url
    source = "127.0.0.21"
    allowed_before = value(url, "lachan_answers_total", action="allowed", category="none",
                           profile="pilot")  # fmt: skip
    reply = ask(env.port, "once." + ADULT, source=source)
    assert addresses(reply) == [INTERNET_V4]
    allowed_after = value(url, "lachan_answers_total", action="allowed", category="none",
                          profile="pilot")  # fmt: skip
    assert allowed_after == allowed_before  # one answer, counted once: as monitored


# -- 5. serve-stale ----------------------------------------------------------------------------
@pytest.fixture
def stale_pair(tmp_path: Path) -> Iterator[tuple[StubUpstream, LachanProcess, LachanProcess]]:
    """One stub, and two lachan instances forwarding to it: serve_stale on and off."""
    with InternetStub() as stub:
        on = start_lachan(tmp_path / "on", stub.address,
                          "lists: {enabled: false}\ncache: {serve_stale: true}\n", ipv6=False)  # fmt: skip
        try:
            off = start_lachan(tmp_path / "off", stub.address, "lists: {enabled: false}\n",
                               ipv6=False)  # fmt: skip
            try:
                yield stub, on, off
            finally:
                stop_checked(off)
        finally:
            stop_checked(on)


@pytest.mark.parametrize("outage", ["drop", "stopped"])
def test_serve_stale_answers_an_expired_name_when_the_upstream_is_gone(
    stale_pair: tuple[StubUpstream, LachanProcess, LachanProcess], outage: str
) -> None:
    stub, on, off = stale_pair
    name = "a.ttl1.example.test"  # TTL 1 at the stub
    for process in (on, off):
        fresh = ask(process.port, name)
        assert addresses(fresh) == ["192.0.2.10"] and fresh.answer[0].ttl <= 1
    time.sleep(1.5)  # both cache entries have expired
    if outage == "drop":
        stub.mode = "drop"
    else:
        stub.stop()
    started = time.monotonic()
    stale = ask(on.port, name, timeout=5)
    elapsed = time.monotonic() - started
    assert rcode(stale) == "NOERROR" and addresses(stale) == ["192.0.2.10"]
    assert stale.answer[0].ttl == 30  # stale_answer_ttl (RFC 8767 recommends 30 s)
    assert elapsed < 3.0, elapsed
    started = time.monotonic()
    failed = try_ask(off.port, name, timeout=5)
    elapsed = time.monotonic() - started
    assert failed is not None, "no answer at all without serve_stale"
    assert rcode(failed) == "SERVFAIL" and not failed.answer
    assert elapsed < 3.0, elapsed
