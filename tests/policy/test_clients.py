"""Client mapping: longest prefix, listeners, trusted ECS only, and ECS option parsing."""

from __future__ import annotations

import ipaddress

import pytest

from resolver.errors import ConfigError
from resolver.policy.clients import ClientMap, EcsError, address_key, parse_ecs

CONFIG = {
    "default": "under16",
    "networks": {
        "10.0.0.0/8": "isp-default",
        "10.1.0.0/16": "school",
        "10.1.2.0/24": "under16",
        "2001:db8::/32": "isp-default",
        "2001:db8:5::/48": "school",
    },
    "listeners": {"192.0.2.53": "isp-default", "[2001:db8::53]:5353": "school"},
    "trusted_ecs": ["127.0.0.1/32", "::1/128"],
    "trusted_proxy": ["192.0.2.10/32"],
}
LISTENER = ("127.0.0.1", 53)


@pytest.fixture(scope="module")
def cmap(profiles) -> ClientMap:
    return ClientMap.from_config(CONFIG, profiles, "lachan.yaml")


@pytest.mark.parametrize(
    ("client", "listener", "profile"),
    [
        ("10.9.9.9", LISTENER, "isp-default"),
        ("10.1.9.9", LISTENER, "school"),
        ("10.1.2.3", LISTENER, "under16"),  # the /24 beats the /16 and the /8
        ("::ffff:10.1.9.9", LISTENER, "school"),  # v4-mapped from a dual-stack socket
        ("2001:db8:5::1", LISTENER, "school"),
        ("2001:db8:6::1", LISTENER, "isp-default"),
        ("fe80::1%eth0", LISTENER, "under16"),
        ("172.16.0.1", ("192.0.2.53", 53), "isp-default"),  # listener address, any port
        ("172.16.0.1", ("2001:db8::53", 5353), "school"),  # listener address and port
        ("172.16.0.1", ("2001:db8::53", 53), "under16"),
        ("10.1.0.1", ("192.0.2.53", 53), "school"),  # a source network beats the listener
        ("172.16.0.1", LISTENER, "under16"),  # the default
    ],
)
def test_profile_for(cmap, client, listener, profile) -> None:
    assert cmap.profile_for(client, listener).name == profile


def test_ecs_from_trusted_forwarder_only(cmap) -> None:
    ecs = ipaddress.ip_network("10.1.2.0/24")
    assert cmap.profile_for("127.0.0.1", LISTENER, ecs).name == "under16"
    assert cmap.profile_for("::1", LISTENER, ecs).name == "under16"
    assert cmap.profile_for("172.16.0.9", LISTENER, ecs).name == "under16"  # ignored: default
    assert cmap.profile_for("10.9.0.1", LISTENER, ecs).name == "isp-default"  # ignored
    # A /20 may be anywhere in 10.1.0.0/20: the /24 cannot apply, the /16 does.
    assert cmap.profile_for("127.0.0.1", LISTENER, ipaddress.ip_network("10.1.0.0/20")).name == (
        "school"
    )
    # Source prefix 0 means "do not use my address": fall back to the packet's source.
    assert cmap.profile_for("127.0.0.1", LISTENER, ipaddress.ip_network("0.0.0.0/0")).name == (
        "under16"
    )


def test_trust(cmap) -> None:
    assert cmap.trusts_proxy("192.0.2.10") and not cmap.trusts_proxy("192.0.2.11")
    assert cmap.trusts_ecs("::1") and not cmap.trusts_ecs("10.0.0.1")


def test_config_errors(profiles) -> None:
    bad = {
        "default": "kids",
        "networks": {"10.0.0.1/8": "school", "10.2.0.0/16": "nope"},
        "listeners": {"[::1]:99999": "school"},
        "trusted_ecs": ["not-a-net"],
        "extra": 1,
    }
    with pytest.raises(ConfigError) as caught:
        ClientMap.from_config(bad, profiles, "lachan.yaml")
    text = "\n".join(caught.value.problems)
    assert "lachan.yaml: clients.extra: unknown key" in text
    assert "lachan.yaml: clients.default: unknown profile 'kids'" in text
    assert "lachan.yaml: clients.networks.10.0.0.1/8: 10.0.0.1/8 has host bits set" in text
    assert "lachan.yaml: clients.networks.10.2.0.0/16: unknown profile 'nope'" in text
    assert "lachan.yaml: clients.listeners.[::1]:99999: invalid port '99999'" in text
    assert "lachan.yaml: clients.trusted_ecs[0]:" in text
    assert len(caught.value.problems) == 6


@pytest.mark.parametrize(
    ("data", "network"),
    [
        (bytes.fromhex("0001 18 00 0a0102"), "10.1.2.0/24"),
        (bytes.fromhex("0001 20 00 c0000201"), "192.0.2.1/32"),
        (bytes.fromhex("0001 00 00"), "0.0.0.0/0"),
        (bytes.fromhex("0001 0c 00 0a10"), "10.16.0.0/12"),
        (bytes.fromhex("0002 38 00 20010db8000500"), "2001:db8:5::/56"),
        (bytes.fromhex("0002 80 00 20010db8000000000000000000000001"), "2001:db8::1/128"),
    ],
)
def test_parse_ecs(data, network) -> None:
    assert parse_ecs(data) == ipaddress.ip_network(network)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("0001 18"), "too short"),
        (bytes.fromhex("0003 08 00 0a"), "family 3 unknown"),
        (bytes.fromhex("0001 21 00 0a01020300"), "longer than the address"),
        (bytes.fromhex("0002 81 00") + bytes(17), "longer than the address"),
        (bytes.fromhex("0001 18 10 0a0102"), "scope prefix must be 0"),
        (bytes.fromhex("0001 18 00 0a01"), "has 2 octets, /24 needs 3"),
        (bytes.fromhex("0001 18 00 0a010200"), "has 4 octets, /24 needs 3"),
        (bytes.fromhex("0001 0c 00 0a1f"), "bits set beyond /12"),
    ],
)
def test_parse_ecs_rejects(data, message) -> None:
    with pytest.raises(EcsError, match=message):
        parse_ecs(data)
    assert issubclass(EcsError, ValueError)


def test_address_key() -> None:
    assert address_key("10.0.0.1") == (32, 0x0A000001)
    assert address_key("::ffff:10.0.0.1") == (32, 0x0A000001)
    assert address_key("::1") == (128, 1)
    with pytest.raises(OSError):
        address_key("10.0.0.300")  # socket.inet_pton raises OSError


@pytest.mark.parametrize(
    ("client", "listener", "ecs", "words"),
    [
        ("10.1.2.3", LISTENER, None, "client 10.1.2.3 is in 10.1.2.0/24"),
        ("2001:db8:5::1", LISTENER, None, "is in 2001:db8:5::/48"),
        ("172.16.0.1", ("192.0.2.53", 53), None, "asked listener 192.0.2.53"),
        ("172.16.0.1", ("2001:db8::53", 5353), None, "asked listener 2001:db8::53 port 5353"),
        ("172.16.0.1", LISTENER, None, "the default profile"),
        ("127.0.0.1", LISTENER, "10.1.0.0/20", "ECS 10.1.0.0/20 from trusted forwarder"),
        ("172.16.0.1", LISTENER, "10.1.2.0/24", "ignored: not a trusted forwarder"),
    ],
)
def test_explain_agrees_with_profile_for(cmap, client, listener, ecs, words) -> None:
    network = ipaddress.ip_network(ecs) if ecs else None
    profile, why = cmap.explain(client, listener, network)
    assert profile is cmap.profile_for(client, listener, network)
    assert words in why


def test_a_misspelt_key_says_did_you_mean(profiles) -> None:
    with pytest.raises(ConfigError) as caught:
        ClientMap.from_config({"defualt": "school"}, profiles, "lachan.yaml")
    assert caught.value.problems == [
        "lachan.yaml: clients.defualt: unknown key (did you mean default? known: default, "
        "listeners, networks, trusted_ecs, trusted_proxy)"
    ]
