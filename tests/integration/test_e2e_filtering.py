"""End to end: profiles, block modes, overrides, keywords, safe search, EDE and client mapping.

One real ``lachan serve`` (the bundled blocklists, the shipped profiles plus a few test
profiles) forwards to a stub "internet" on loopback; dnspython is the oracle, dig the user.
Source addresses pick the profile: 127.0.0.1 under16 (the default), 127.0.0.2 isp-default,
::1 school, 127.0.0.11-15 the test profiles; a second listener maps to school.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import dns.edns
import dns.message
import dns.rdatatype
import pytest
from e2e_helpers import (
    INTERNET_V4,
    InternetStub,
    addresses,
    ask,
    cnames,
    compiled_state_dir,
    copy_policies,
    dig,
    dig_status,
    ede,
    free_port,
    make_query,
    rcode,
    start_lachan,
    stop_checked,
    udp_exchange,
)

from resolver.coverage.canary import parse_canary
from resolver.proxyv2 import build_proxy_v2

EXTRA_PROFILES = {
    "mode-nodata": "name: mode-nodata\nblock: [adult, gambling, malware, phishing, scam]\n"
    "block_answer: {mode: nodata, ttl: 120}\n",
    "mode-null": "name: mode-null\nblock: [adult, gambling]\nblock_answer: {mode: 'null', ttl: 60}\n",
    "mode-refused": "name: mode-refused\nblock: [adult, gambling]\nblock_answer: {mode: refused}\n",
    "mode-blockpage": "name: mode-blockpage\nblock: [adult, gambling]\n"
    "block_answer: {mode: blockpage, ttl: 30, address_v4: 192.0.2.80, address_v6: '2001:db8::80'}\n",
    "overrides": "name: overrides\nblock: [adult, gambling, phishing]\n"
    "allow: [xvideos.com, '*.bimxinh.com']\n"
    "deny: [denied.example.org, '*.deny-zone.example.org']\n",
}

# Real names from the bundled lists (blocklists/bundled/), checked with `lachan lists lookup`.
ADULT = "003755.xyz"  # shadowwhisperer-adult
ADULT_VN = "bimxinh.com"  # hostsvn-adult-vn
GAMBLING = "188bet.vote"  # hostsvn-gambling
GAMBLING_VN = "007win.com"  # hostsvn-gambling-vn (and hostsvn-gambling)
PHISHING_VN = "0840113.com"  # ChongLuaDao
MALWARE = "0365alert.com"  # shadowwhisperer-malware
SCAM = "2020trendingtees.com"  # shadowwhisperer-scam
DATING = "amiez.org"  # shadowwhisperer-dating

UNDER16, ISP, SCHOOL = "127.0.0.1", "127.0.0.2", "::1"


@dataclass
class Setup:
    port: int
    school_port: int  # a second listener, mapped to school by clients.listeners
    stub: InternetStub


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    state = compiled_state_dir(tmp_path_factory.getbasetemp())
    work = tmp_path_factory.mktemp("e2e-filter")
    policies = copy_policies(work / "policies", EXTRA_PROFILES)
    school_port = free_port(("127.0.0.1",))
    config = f"""
site: {{id: e2e-filter, kind: school}}
lists: {{state_dir: "{state}"}}
policies: {{dir: "{policies}"}}
clients:
  default: under16
  networks:
    127.0.0.2/32: isp-default
    "::1/128": school
    10.20.0.0/16: isp-default
    127.0.0.11/32: mode-nodata
    127.0.0.12/32: mode-null
    127.0.0.13/32: mode-refused
    127.0.0.14/32: mode-blockpage
    127.0.0.15/32: overrides
  listeners:
    "127.0.0.1:{school_port}": school
  trusted_ecs: [127.0.0.5/32]
  trusted_proxy: [127.0.0.6/32]
"""
    with InternetStub() as stub:
        process = start_lachan(work, stub.address, config, (f"127.0.0.1:{school_port}",))
        try:
            yield Setup(process.port, school_port, stub)
        finally:
            stop_checked(process)


def soa_of(message: dns.message.Message) -> tuple[int, int]:
    """(TTL, MINIMUM) of the SOA in the authority section."""
    [rrset] = [r for r in message.authority if r.rdtype == dns.rdatatype.SOA]
    return rrset.ttl, rrset[0].minimum


def canary_profile(port: int, **kwargs: object) -> str:
    reply = ask(port, "status.lachan.arpa", "TXT", **kwargs)  # type: ignore[arg-type]
    texts = [s for rrset in reply.answer for r in rrset for s in r.strings]
    return parse_canary(texts).profile


# -- 1. profiles ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "category", "code"),
    [
        (ADULT, "adult", 17),
        (ADULT_VN, "adult", 17),
        (GAMBLING, "gambling", 17),
        (GAMBLING_VN, "gambling", 17),
        (PHISHING_VN, "phishing", 15),
        (MALWARE, "malware", 15),
        (SCAM, "scam", 15),
        (DATING, "dating", 17),
    ],
)
def test_under16_blocks_bundled_names_with_soa_and_ede(
    env: Setup, name: str, category: str, code: int
) -> None:
    reply = ask(env.port, name, source=UNDER16)
    assert rcode(reply) == "NXDOMAIN"
    assert not reply.answer
    assert soa_of(reply) == (300, 300)  # block_answer.ttl of under16
    assert ede(reply) == [(code, f"lachan: blocked category={category} profile=under16; help: 111")]


def test_isp_default_censors_adult_and_blocks_security_but_allows_the_rest(env: Setup) -> None:
    adult = ask(env.port, ADULT_VN, source=ISP)
    assert rcode(adult) == "NXDOMAIN" and ede(adult)[0][0] == 16  # state-mandated: Censored
    assert "category=adult profile=isp-default" in ede(adult)[0][1]
    for name in (MALWARE, PHISHING_VN, SCAM):
        reply = ask(env.port, name, source=ISP)
        assert rcode(reply) == "NXDOMAIN" and ede(reply)[0][0] == 15, name
    for name in (GAMBLING, DATING, "bestcasino-e2e.org", "use-application-dns.net"):
        reply = ask(env.port, name, source=ISP)
        assert rcode(reply) == "NOERROR", name
        assert addresses(reply) == [INTERNET_V4] and not ede(reply), name


def test_school_blocks_its_categories_and_keeps_teaching_platforms(env: Setup) -> None:
    for name, category in ((GAMBLING, "gambling"), (ADULT, "adult"), (DATING, "dating")):
        reply = ask(env.port, name, source=SCHOOL)
        assert rcode(reply) == "NXDOMAIN", name
        assert ede(reply) == [
            (17, f"lachan: blocked category={category} profile=school; help: 111")
        ]
    for name in ("classroom.google.com", "www.olm.vn", "zoom.us"):
        reply = ask(env.port, name, source=SCHOOL)
        assert addresses(reply) == [INTERNET_V4], name


@pytest.mark.parametrize(
    "asked",
    [ADULT.upper(), "www." + ADULT, "a.b.c." + ADULT_VN, "WwW.188Bet.VoTe", GAMBLING + "."],
)
@pytest.mark.parametrize("qtype", ["A", "AAAA", "HTTPS", "MX", "TXT"])
def test_blocked_however_asked(env: Setup, asked: str, qtype: str) -> None:
    reply = ask(env.port, asked, qtype, source=UNDER16)
    assert rcode(reply) == "NXDOMAIN" and not reply.answer
    assert reply.question[0].name.to_text() == asked.rstrip(".") + "."  # case kept
    assert ede(reply)[0][0] == 17


def test_dig_sees_the_block_with_and_without_trailing_dot(env: Setup) -> None:
    for name in (GAMBLING, GAMBLING + "."):
        out = dig(env.port, name, "A")
        assert dig_status(out) == "NXDOMAIN", out
        assert "EDE: 17 (Filtered)" in out, out
        assert "lachan.arpa." in out  # the SOA of the block in the authority section
    allowed = dig(env.port, "+short", "www.example-allowed.org")
    assert allowed.strip() == INTERNET_V4


def test_block_mode_nodata(env: Setup) -> None:
    for qtype in ("A", "AAAA", "MX"):
        reply = ask(env.port, ADULT, qtype, source="127.0.0.11")
        assert rcode(reply) == "NOERROR" and not reply.answer, qtype
        assert soa_of(reply) == (120, 120)


def test_block_mode_null(env: Setup) -> None:
    a = ask(env.port, ADULT, "A", source="127.0.0.12")
    assert addresses(a, "A") == ["0.0.0.0"] and a.answer[0].ttl == 60
    aaaa = ask(env.port, ADULT, "AAAA", source="127.0.0.12")
    assert addresses(aaaa, "AAAA") == ["::"]
    mx = ask(env.port, ADULT, "MX", source="127.0.0.12")
    assert rcode(mx) == "NOERROR" and not mx.answer and soa_of(mx)[0] == 60


def test_block_mode_refused(env: Setup) -> None:
    reply = ask(env.port, GAMBLING, source="127.0.0.13")
    assert rcode(reply) == "REFUSED" and not reply.answer
    assert ede(reply)[0][0] == 17


def test_block_mode_blockpage(env: Setup) -> None:
    a = ask(env.port, GAMBLING, "A", source="127.0.0.14")
    assert addresses(a, "A") == ["192.0.2.80"] and a.answer[0].ttl == 30
    aaaa = ask(env.port, "www." + GAMBLING, "AAAA", source="127.0.0.14")
    assert addresses(aaaa, "AAAA") == ["2001:db8::80"]
    txt = ask(env.port, GAMBLING, "TXT", source="127.0.0.14")
    assert rcode(txt) == "NOERROR" and not txt.answer


def test_allow_and_deny_overrides(env: Setup) -> None:
    port, src = env.port, "127.0.0.15"
    assert addresses(ask(port, "xvideos.com", source=src)) == [INTERNET_V4]  # listed, allowed
    assert rcode(ask(port, "www.xvideos.com", source=src)) == "NXDOMAIN"  # exact allow only
    assert addresses(ask(port, "cdn." + ADULT_VN, source=src)) == [INTERNET_V4]  # *.allow
    assert rcode(ask(port, ADULT_VN, source=src)) == "NXDOMAIN"  # the apex is not under *.
    denied = ask(port, "denied.example.org", source=src)
    assert rcode(denied) == "NXDOMAIN"
    assert ede(denied) == [(17, "lachan: blocked rule=deny profile=overrides; help: 111")]
    assert rcode(ask(port, "x.deny-zone.example.org", source=src)) == "NXDOMAIN"
    assert addresses(ask(port, "deny-zone.example.org", source=src)) == [INTERNET_V4]


def test_keywords_block_and_allow_list(env: Setup) -> None:
    for name in ("bestcasino-e2e.org", "nhacai-e2e.net", "www.baccarat-e2e.com"):
        reply = ask(env.port, name, source=UNDER16)
        assert rcode(reply) == "NXDOMAIN", name
        assert ede(reply) == [(17, "lachan: blocked rule=keyword profile=under16; help: 111")]
    for name in ("www.essex.ac.uk", "sussex.example.org", "mercado.example.org"):
        assert addresses(ask(env.port, name, source=UNDER16)) == [INTERNET_V4], name


# -- 2. safe search -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "asked", "target", "v4"),
    [
        (UNDER16, "www.google.com", "forcesafesearch.google.com", "216.239.38.120"),
        (UNDER16, "www.google.com.vn", "forcesafesearch.google.com", "216.239.38.120"),
        (UNDER16, "www.youtube.com", "restrict.youtube.com", "216.239.38.120"),
        (SCHOOL, "m.youtube.com", "restrictmoderate.youtube.com", "216.239.38.119"),
        (UNDER16, "www.bing.com", "strict.bing.com", "204.79.197.220"),
        (UNDER16, "duckduckgo.com", "safe.duckduckgo.com", "52.142.124.215"),
    ],
)
def test_safe_search_cname_then_target_records(
    env: Setup, source: str, asked: str, target: str, v4: str
) -> None:
    before = env.stub.count(target, "A")
    reply = ask(env.port, asked, "A", source=source)
    assert rcode(reply) == "NOERROR"
    assert cnames(reply) == [(asked, target)]
    assert [r.name.to_text().rstrip(".") for r in reply.answer] == [asked, target]
    assert addresses(reply, "A") == [v4]
    profile = "under16" if source == UNDER16 else "school"
    [(code, text)] = ede(reply)
    assert code == 4 and f"profile={profile}" in text  # Forged Answer
    assert env.stub.count(target, "A") >= max(before, 1)  # resolved through the upstream
    https = ask(env.port, asked, "HTTPS", source=source)
    assert rcode(https) == "NOERROR" and cnames(https) == [(asked, target)]


def test_youtube_moderate_for_school_after_strict_for_under16(env: Setup) -> None:
    name = "www.youtube-nocookie.com"
    strict = ask(env.port, name, source=UNDER16)
    assert cnames(strict) == [(name, "restrict.youtube.com")]
    moderate = ask(env.port, name, source=SCHOOL)
    assert cnames(moderate) == [(name, "restrictmoderate.youtube.com")]
    assert addresses(moderate) == ["216.239.38.119"]


def test_safe_search_aaaa_and_no_rewrite_for_isp(env: Setup) -> None:
    aaaa = ask(env.port, "www.google.com", "AAAA", source=UNDER16)
    assert cnames(aaaa) == [("www.google.com", "forcesafesearch.google.com")]
    assert addresses(aaaa, "AAAA") == ["2001:4860:4802:32::78"]
    for name in ("www.google.com", "www.youtube.com", "www.bing.com"):
        plain = ask(env.port, name, source=ISP)
        assert not cnames(plain) and addresses(plain) == [INTERNET_V4] and not ede(plain), name


# -- 3. EDE only with EDNS --------------------------------------------------------------------
def test_no_ede_and_no_opt_without_edns(env: Setup) -> None:
    for name, source in ((ADULT, ISP), (MALWARE, UNDER16), (GAMBLING, SCHOOL)):
        reply = ask(env.port, name, source=source, edns=False)
        assert rcode(reply) == "NXDOMAIN" and reply.edns == -1 and not ede(reply), name
    rewrite = ask(env.port, "www.bing.com", source=UNDER16, edns=False)
    assert cnames(rewrite) and rewrite.edns == -1


# -- 5. who gets which profile ----------------------------------------------------------------
def test_profile_by_source_address_and_listener(env: Setup) -> None:
    assert canary_profile(env.port, source=UNDER16) == "under16"
    assert canary_profile(env.port, source=ISP) == "isp-default"
    assert canary_profile(env.port, source=SCHOOL) == "school"
    assert canary_profile(env.port, source="127.0.0.9") == "under16"  # no network: default
    assert canary_profile(env.school_port, source=UNDER16) == "school"  # by listener
    assert canary_profile(env.school_port, source=ISP) == "isp-default"  # CIDR beats listener
    # And the behaviour follows: gambling is blocked on the school listener.
    assert rcode(ask(env.school_port, GAMBLING, source=UNDER16)) == "NXDOMAIN"


def ecs_option(network: str, prefix: int) -> dns.edns.Option:
    return dns.edns.ECSOption(network, prefix)


def test_ecs_only_from_trusted_forwarder(env: Setup) -> None:
    subnet = [ecs_option("10.20.30.0", 24)]
    trusted = ask(env.port, GAMBLING, source="127.0.0.5", options=subnet)
    assert addresses(trusted) == [INTERNET_V4]  # isp-default allows gambling
    assert canary_profile(env.port, source="127.0.0.5", options=subnet) == "isp-default"
    untrusted = ask(env.port, GAMBLING, source=UNDER16, options=subnet)
    assert rcode(untrusted) == "NXDOMAIN"  # ECS ignored: still under16
    assert canary_profile(env.port, source=UNDER16, options=subnet) == "under16"
    assert canary_profile(env.port, source="127.0.0.5") == "under16"  # no ECS: its own address


def proxied(query: dns.message.Message, client: str, datagram: bool) -> bytes:
    header = build_proxy_v2((client, 40000), ("127.0.0.1", 53), datagram=datagram)
    return header + query.to_wire()


def tcp_exchange(port: int, prefix: bytes, message: bytes, source: str) -> bytes | None:
    with socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0)) as s:
        s.settimeout(1.0)
        s.sendall(prefix + struct.pack("!H", len(message)) + message)
        try:
            size = s.recv(2)
            if len(size) < 2:
                return None
            want, data = struct.unpack("!H", size)[0], b""
            while len(data) < want:
                chunk = s.recv(want - len(data))
                if not chunk:
                    return None
                data += chunk
            return data
        except (TimeoutError, ConnectionResetError):
            return None


def test_proxy_v2_over_udp_only_from_trusted_front_end(env: Setup) -> None:
    query = make_query("status.lachan.arpa", "TXT")
    reply = udp_exchange(env.port, proxied(query, "10.20.1.1", True), "127.0.0.6")
    assert reply is not None
    texts = [s for rrset in dns.message.from_wire(reply).answer for r in rrset for s in r.strings]
    assert parse_canary(texts).profile == "isp-default"  # the real client's profile
    gambling = make_query(GAMBLING)
    allowed = udp_exchange(env.port, proxied(gambling, "10.20.1.1", True), "127.0.0.6")
    assert allowed is not None and addresses(dns.message.from_wire(allowed)) == [INTERNET_V4]
    inner = udp_exchange(env.port, proxied(gambling, "127.0.0.1", True), "127.0.0.6")
    assert inner is not None and rcode(dns.message.from_wire(inner)) == "NXDOMAIN"
    # A trusted front end's packet without a header is dropped, not served as the front end.
    assert udp_exchange(env.port, gambling.to_wire(), "127.0.0.6") is None
    # From anyone else the header is not believed: never an isp-default answer.
    spoofed = udp_exchange(env.port, proxied(gambling, "10.20.1.1", True), "127.0.0.1")
    assert spoofed is None or rcode(dns.message.from_wire(spoofed)) != "NOERROR"


def test_proxy_v2_over_tcp_only_from_trusted_front_end(env: Setup) -> None:
    query = make_query(GAMBLING).to_wire()
    header = build_proxy_v2(("10.20.1.1", 40000), ("127.0.0.1", 53), datagram=False)
    reply = tcp_exchange(env.port, header, query, "127.0.0.6")
    assert reply is not None and addresses(dns.message.from_wire(reply)) == [INTERNET_V4]
    under16 = build_proxy_v2(("127.0.0.1", 40000), ("127.0.0.1", 53), datagram=False)
    blocked = tcp_exchange(env.port, under16, query, "127.0.0.6")
    assert blocked is not None and rcode(dns.message.from_wire(blocked)) == "NXDOMAIN"
    spoofed = tcp_exchange(env.port, header, query, "127.0.0.1")
    assert spoofed is None or rcode(dns.message.from_wire(spoofed)) != "NOERROR"
    plain = tcp_exchange(env.port, b"", query, "127.0.0.1")  # the same client, no header
    assert plain is not None and rcode(dns.message.from_wire(plain)) == "NXDOMAIN"


# -- 6. canary ----------------------------------------------------------------------------------
def test_canary_txt_names_site_profile_index_and_age(env: Setup) -> None:
    reply = ask(env.port, "status.lachan.arpa", "TXT", source=SCHOOL)
    assert rcode(reply) == "NOERROR" and all(r.ttl == 0 for r in reply.answer)
    texts = [s for rrset in reply.answer for r in rrset for s in r.strings]
    status = parse_canary(texts)
    assert (status.site, status.profile, status.kind) == ("e2e-filter", "school", "school")
    assert status.index.startswith("sha256:") and len(status.index) == len("sha256:") + 16
    assert 0 <= status.index_age < 24 * 3600  # compiled in this test session
    out = dig(env.port, "status.lachan.arpa", "TXT", "+short")
    assert '"site=e2e-filter"' in out and '"profile=under16"' in out
