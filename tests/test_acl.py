"""Access control: default networks, operator overrides, address spellings, the refusal."""

from __future__ import annotations

import ipaddress

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.acl import Acl, address_key, compile_ranges
from resolver.blocks import BlockAnswers
from resolver.errors import ConfigError
from resolver.reply import ACL_REFUSED_TEXT as REFUSED_TEXT
from resolver.settings_limits import DEFAULT_ALLOW, AclAction, AclConfig, acl_config
from resolver.wire import Unanswerable, WireError
from resolver.wire_query import parse_query

DEFAULT = Acl()


def refusal(wire: bytes) -> bytes:
    """The refusal the server sends a client outside the access list (pipeline._admit)."""
    return BlockAnswers(1232, {}).refused(parse_query(wire))


@pytest.mark.parametrize(
    ("ip", "served"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("::2", False),
        ("10.0.0.1", True),
        ("172.16.0.1", True),
        ("172.31.255.255", True),
        ("172.32.0.1", False),
        ("192.168.1.10", True),
        ("192.169.0.1", False),
        ("100.64.0.1", True),  # RFC 6598 CGNAT
        ("100.127.255.255", True),
        ("100.128.0.0", False),
        ("100.63.255.255", False),
        ("169.254.1.1", True),
        ("fe80::1", True),
        ("fe80::1%eth0", True),  # scoped link-local as recvfrom reports it
        ("fe80::1%2", True),
        ("febf::1", True),
        ("fec0::1", False),
        ("fc00::1", True),
        ("fd12:3456::1", True),
        ("fe00::1", False),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped, from a dual-stack socket
        ("::ffff:8.8.8.8", False),
        ("::ffff:100.64.1.1", True),
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("2001:db8::1", False),
        ("2402:800::1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("::", False),
        ("not-an-address", False),
        ("", False),
        ("10.0.0.256", False),
    ],
)
def test_default_policy(ip: str, served: bool) -> None:
    assert DEFAULT.allows(ip) is served
    assert DEFAULT.allows(ip) is served  # second time from the memo


def test_operator_networks_most_specific_wins() -> None:
    acl = Acl(
        AclConfig(
            allow=("10.0.0.0/8", "10.9.8.0/24", "203.0.113.0/24", "2001:db8::/32"),
            deny=("10.9.0.0/16", "203.0.113.7/32", "2001:db8:bad::/48"),
        )
    )
    table = {
        "10.1.1.1": True,
        "10.9.1.1": False,
        "10.9.8.8": True,
        "203.0.113.6": True,
        "203.0.113.7": False,
        "::ffff:203.0.113.7": False,
        "2001:db8:1::1": True,
        "2001:db8:bad::1": False,
        "192.168.1.1": False,  # operator lists replace the defaults
        "127.0.0.1": False,
    }
    assert {ip: acl.allows(ip) for ip in table} == table


def test_deny_wins_a_tie_and_mapped_networks_fold_onto_ipv4() -> None:
    acl = Acl(AclConfig(allow=("192.0.2.0/24", "::ffff:198.51.100.0/120"), deny=("192.0.2.0/24",)))
    assert not acl.allows("192.0.2.1")
    assert acl.allows("198.51.100.9") and acl.allows("::ffff:198.51.100.9")


def test_memo_is_bounded() -> None:
    acl = Acl(memo_size=100)
    for i in range(1000):
        acl.allows(f"10.0.{i // 256}.{i % 256}")
    assert len(acl._memo) <= 100
    assert acl.allows("10.0.0.1") and not acl.allows("8.8.4.4")


def _fold(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> ipaddress._BaseNetwork:
    mapped = ipaddress.IPv6Network("::ffff:0:0/96")
    if net.version == 6 and net.prefixlen >= 96 and net.subnet_of(mapped):  # type: ignore[arg-type]
        return ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    return net


def _oracle(allow: list[str], deny: list[str], ip: str) -> bool:
    """Longest prefix wins, deny breaks ties; an IPv4-mapped client is an IPv4 client."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    best: tuple[int, int] | None = None
    for rank, nets in ((0, allow), (1, deny)):
        for cidr in nets:
            net = _fold(ipaddress.ip_network(cidr))
            if addr.version == net.version and addr in net:
                candidate = (net.prefixlen, rank)
                best = candidate if best is None or candidate > best else best
    return best is not None and best[1] == 0


_V4_NETS = st.builds(
    lambda a, p: str(ipaddress.ip_network((a, p), strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
_V6_NETS = st.builds(
    lambda a, p: str(ipaddress.ip_network((a, p), strict=False)),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
_NETS = st.lists(st.one_of(_V4_NETS, _V6_NETS), max_size=8)


@settings(max_examples=200, deadline=None)
@given(allow=_NETS, deny=_NETS, probes=st.lists(st.integers(0, 2**32 - 1), max_size=6))
def test_compiled_ranges_agree_with_a_longest_prefix_oracle(
    allow: list[str], deny: list[str], probes: list[int]
) -> None:
    acl = Acl(AclConfig(allow=tuple(allow), deny=tuple(deny)))
    # Probe the edges of every network (where painting errors hide) and random points.
    candidates = [str(ipaddress.IPv4Address(p)) for p in probes]
    for cidr in allow + deny:
        net = ipaddress.ip_network(cidr)
        for edge in (int(net.network_address) - 1, int(net.broadcast_address) + 1):
            if 0 <= edge < 2**net.max_prefixlen:
                candidates.append(
                    str(
                        ipaddress.ip_address(edge)
                        if net.version == 6
                        else ipaddress.IPv4Address(edge)
                    )
                )
        candidates += [str(net.network_address), str(net.broadcast_address)]
    for ip in candidates:
        assert acl.allows(ip) is _oracle(allow, deny, ip), ip


def test_ipv6_networks_do_not_capture_mapped_ipv4_clients() -> None:
    acl = Acl(AclConfig(allow=("::/0",)))
    assert acl.allows("2001:db8::1") and not acl.allows("::ffff:203.0.113.1")


def test_compiled_segments_alternate() -> None:
    starts, verdicts = compile_ranges(DEFAULT_ALLOW, ())
    assert starts == sorted(set(starts))
    assert all(a != b for a, b in zip(verdicts, verdicts[1:], strict=False))


def test_address_key_folds_mapped_and_scoped() -> None:
    assert address_key("::ffff:10.0.0.1") == address_key("10.0.0.1")
    assert address_key("fe80::1%eth0") == address_key("fe80::1")
    assert address_key("::10.0.0.1") != address_key("10.0.0.1")
    assert address_key("nope") is None


def test_config_section() -> None:
    assert acl_config(None) == AclConfig()
    cfg = acl_config({"allow": ["198.51.100.0/24"], "deny": [], "action": "drop"})
    assert cfg.action is AclAction.DROP and cfg.allow == ("198.51.100.0/24",)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"allow": ["10.0.0.0/33"]}, "site.yaml: acl.allow[0]: '10.0.0.0/33' is not a network"),
        ({"deny": "10.0.0.0/8"}, "site.yaml: acl.deny: expected a list of networks"),
        ({"action": "ignore"}, "site.yaml: acl.action: expected 'refuse' or 'drop'"),
        ({"alow": []}, "site.yaml: acl.alow: unknown key"),
    ],
)
def test_config_errors_name_file_and_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        acl_config(section, "site.yaml")
    assert caught.value.problems[0].startswith(message)


@pytest.mark.parametrize("use_edns", [False, True])
@pytest.mark.parametrize("qname", ["example.com.", "a.very.long.name.under.example.vn.", "."])
def test_refusal_is_refused_with_ede_18_and_not_amplified(use_edns: bool, qname: str) -> None:
    query = dns.message.make_query(
        qname, "A", use_edns=0 if use_edns else False, want_dnssec=use_edns
    )
    query.flags |= dns.flags.CD
    wire = query.to_wire()
    answer = refusal(wire)
    assert answer is not None
    parsed = dns.message.from_wire(answer)
    assert parsed.id == query.id and parsed.rcode() == dns.rcode.REFUSED
    assert (
        parsed.flags & dns.flags.QR and parsed.flags & dns.flags.RD and parsed.flags & dns.flags.CD
    )
    assert parsed.question == query.question and not parsed.answer
    # The EDE option and its text are the only growth: OPT was in the query already.
    assert len(answer) <= len(wire) + 6 + (len(REFUSED_TEXT) if use_edns else 0)
    if use_edns:
        assert parsed.edns == 0 and parsed.ednsflags & dns.flags.DO
        (ede,) = parsed.options
        assert isinstance(ede, dns.edns.EDEOption) and ede.code == dns.edns.EDECode.PROHIBITED
        assert ede.text == "lachan: refused by access list"
    else:
        assert parsed.edns == -1


def test_refusal_of_a_query_with_a_cookie_drops_the_cookie_and_stays_bounded() -> None:
    cookie = dns.edns.CookieOption(b"12345678", b"")
    wire = dns.message.make_query("example.com.", "TXT", use_edns=0, options=[cookie]).to_wire()
    answer = refusal(wire)
    # The 12-byte cookie option is not echoed; the EDE option (4 + 2 + text) replaces it.
    assert answer is not None and len(answer) == len(wire) - 12 + 6 + len(REFUSED_TEXT)
    assert not [o for o in dns.message.from_wire(answer).options if o.otype == 10]


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\x00" * 11,
        b"\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # a response
        b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",  # 2 questions
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example",  # truncated name
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # pointer
    ],
)
def test_garbage_gets_no_refusal(wire: bytes) -> None:
    """The refusal is built on a parsed query only: garbage is dropped or gets FORMERR."""
    with pytest.raises((Unanswerable, WireError)):
        refusal(wire)
