"""dnsdist in front of two lachan instances with PROXY protocol v2, as docs/isp-guide.md says.

lachan sees each subscriber's own address through dnsdist and picks that subscriber's
profile; a PROXY header from a peer that is not the trusted front end is not believed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from tests.integration.ops_helpers import (
    ask,
    canary_profile,
    cname_target,
    dnsdist,
    free_port,
    guide_blocks,
    proxy_v2_header,
    raw_exchange,
    replace_exactly,
    start_lachan,
    wait_until,
)
from tests.stub_upstream import LachanProcess, StubUpstream
from tests.tools import require


@pytest.fixture(autouse=True, scope="module")
def _dnsdist() -> None:
    require("dnsdist")  # fails every test here naming the package, never skips


SCHOOL_CLIENT, UNDER16_CLIENT, OTHER_CLIENT = "127.0.0.10", "127.0.0.20", "127.0.0.30"


def lachan_config(site: str) -> str:
    """The guide's ``clients:`` section, subscriber networks swapped for loopback addresses."""
    (section,) = [b for b in guide_blocks("isp-guide.md", "yaml") if "trusted_proxy" in b]
    section = replace_exactly(section, '"100.64.32.0/24": school', f'"{SCHOOL_CLIENT}/32": school')
    section = replace_exactly(
        section, '"100.64.16.0/20": under16', f'"{UNDER16_CLIENT}/32": under16'
    )
    return f"site: {{id: {site}, kind: isp}}\n" + section


def dnsdist_config(port: int, first: int, second: int) -> str:
    """The guide's dnsdist.conf on loopback ports (no [::]:53, webserver on a free port)."""
    (conf,) = guide_blocks("isp-guide.md", "lua")
    conf = replace_exactly(conf, 'setLocal("0.0.0.0:53")', f'setLocal("127.0.0.1:{port}")')
    conf = replace_exactly(conf, 'addLocal("[::]:53")\n', "")
    conf = replace_exactly(conf, '"127.0.0.1:5301"', f'"127.0.0.1:{first}"')
    conf = replace_exactly(conf, '"127.0.0.1:5302"', f'"127.0.0.1:{second}"')
    web = free_port(("127.0.0.1",))
    return replace_exactly(conf, 'webserver("127.0.0.1:8083")', f'webserver("127.0.0.1:{web}")')


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, LachanProcess, LachanProcess]]:
    """dnsdist on a free port in front of lachan-a and lachan-b (one stub behind both)."""
    workdir = tmp_path_factory.mktemp("dnsdist")
    with StubUpstream(seed=61) as stub:
        first = start_lachan(workdir, stub.address, lachan_config("ops-a"))
        second = start_lachan(workdir, stub.address, lachan_config("ops-b"))
        port = free_port(("127.0.0.1",))
        conf = dnsdist_config(port, first.port, second.port)
        try:
            with dnsdist(workdir, conf, port):
                yield port, first, second
        finally:
            for server in (first, second):
                server.stop()
                server.assert_clean_log()


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_each_subscriber_gets_its_own_profile_through_dnsdist(
    front: tuple[int, LachanProcess, LachanProcess], tcp: bool
) -> None:
    port = front[0]
    expected = {SCHOOL_CLIENT: "school", UNDER16_CLIENT: "under16", OTHER_CLIENT: "isp-default"}
    for _ in range(2):  # twice: the second round is answered from lachan's per-client memo
        for source, profile in expected.items():
            reply = ask(port, "status.lachan.arpa", "TXT", tcp=tcp, source=source)
            assert canary_profile(reply) == profile, (source, reply.to_text())
    blocked = ask(port, "casino-royale.example.test", "A", tcp=tcp, source=SCHOOL_CLIENT)
    passed = ask(port, "casino-royale.example.test", "A", tcp=tcp, source=OTHER_CLIENT)
    assert blocked.rcode() == dns.rcode.NXDOMAIN  # the school profile's keyword "casino"
    assert passed.rcode() == dns.rcode.NOERROR and passed.answer


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_safe_search_follows_each_subscribers_profile(
    front: tuple[int, LachanProcess, LachanProcess], tcp: bool
) -> None:
    port = front[0]
    school = ask(port, "www.youtube.com", "A", tcp=tcp, source=SCHOOL_CLIENT)
    under16 = ask(port, "www.youtube.com", "A", tcp=tcp, source=UNDER16_CLIENT)
    other = ask(port, "www.youtube.com", "A", tcp=tcp, source=OTHER_CLIENT)
    assert cname_target(school) == "restrictmoderate.youtube.com."
    assert cname_target(under16) == "restrict.youtube.com."
    assert cname_target(other) is None  # isp-default: safe search is the subscriber's choice


def _status_query() -> bytes:
    return dns.message.make_query("status.lachan.arpa", "TXT", id=4242).to_wire()


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_proxy_header_is_believed_only_from_the_trusted_front_end(
    front: tuple[int, LachanProcess, LachanProcess], tcp: bool
) -> None:
    lachan = front[1]
    wire = _status_query()
    body = len(wire).to_bytes(2, "big") + wire if tcp else wire
    claim = proxy_v2_header((UNDER16_CLIENT, 40000), ("127.0.0.1", lachan.port), stream=tcp)
    # From 127.0.0.1 (trusted) the claimed address selects the profile: the header is right.
    trusted = raw_exchange(lachan.port, claim + body, "127.0.0.1", tcp)
    assert trusted is not None
    assert canary_profile(dns.message.from_wire(trusted[2:] if tcp else trusted)) == "under16"
    # From 127.0.0.30 the same bytes are read as DNS: the signature's "\r\n" is the ID,
    # its next byte an IQUERY opcode, so the answer is NOTIMP or FORMERR (or nothing), never
    # the claimed client's answer.
    untrusted = raw_exchange(lachan.port, claim + body, OTHER_CLIENT, tcp)
    if untrusted is not None:
        reply = dns.message.from_wire(untrusted[2:] if tcp else untrusted, question_only=True)
        assert reply.rcode() in (dns.rcode.FORMERR, dns.rcode.NOTIMP), reply.to_text()
        assert canary_profile(reply) is None
    # And a plain query from 127.0.0.30 gets its own (default) profile, not the claimed one.
    plain = ask(lachan.port, "status.lachan.arpa", "TXT", tcp=tcp, source=OTHER_CLIENT)
    assert canary_profile(plain) == "isp-default"


def test_dnsdist_moves_traffic_to_the_other_instance_when_one_stops(
    tmp_path: Path,
) -> None:
    """Restarting one lachan at a time (the guide's reason for two instances) loses nothing."""
    with StubUpstream(seed=62) as stub:
        first = start_lachan(tmp_path, stub.address, lachan_config("ops-a"))
        second = start_lachan(tmp_path, stub.address, lachan_config("ops-b"))
        port = free_port(("127.0.0.1",))
        conf = dnsdist_config(port, first.port, second.port)
        try:
            with dnsdist(tmp_path, conf, port):
                sites = {_site(ask(port, "status.lachan.arpa", "TXT", source=SCHOOL_CLIENT))}
                serving = first if sites == {"ops-a"} else second
                serving.stop()
                # Health checks every second: the other instance takes over within seconds.
                assert wait_until(lambda: _site_via(port) not in (None, *sites), 10, 0.3)
                reply = ask(port, "status.lachan.arpa", "TXT", source=SCHOOL_CLIENT)
                assert canary_profile(reply) == "school"
        finally:
            for server in (first, second):
                server.stop()


def _site(reply: dns.message.Message) -> str | None:
    for rrset in reply.answer:
        for rdata in rrset:
            for text in rdata.strings:
                if text.startswith(b"site="):
                    return str(text[5:].decode())
    return None


def _site_via(port: int) -> str | None:
    try:
        reply = ask(port, "status.lachan.arpa", "TXT", source=SCHOOL_CLIENT, timeout=1)
    except Exception:
        return None
    return _site(reply) if reply.rcode() == dns.rcode.NOERROR else None


def test_the_guides_dig_commands(front: tuple[int, LachanProcess, LachanProcess]) -> None:
    """As docs/isp-guide.md says: through dnsdist, bare from 127.0.0.1, and with -b."""
    port, lachan = front[0], front[1]

    def dig(*args: str) -> str:
        command = ["dig", "+time=1", "+tries=1", *args, "TXT", "status.lachan.arpa", "+short"]
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout

    assert '"profile=isp-default"' in dig("@127.0.0.1", "-p", str(port))
    assert "profile=" not in dig("@127.0.0.1", "-p", str(lachan.port))  # no PROXY header
    assert '"profile=isp-default"' in dig("-b", "127.0.0.2", "@127.0.0.1", "-p", str(lachan.port))
