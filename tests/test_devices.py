"""Which client a device ID makes a connection (resolver/devices.py), on a real Resolver."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode

from resolver import config
from resolver.app import build_resolver
from resolver.devices import DeviceLimits, Refusal, choose, refuse
from resolver.querystate import ClientState
from resolver.ratelimit import Verdict
from resolver.reply import DEVICE_REQUIRED_TEXT as DEVICE_REQUIRED
from resolver.state import build_state
from resolver.stats import DOT, Stats
from tests.stub_upstream import ROOT

TEXT = (
    "upstreams: ['127.0.0.1:9']\nlists: {enabled: false}\n"
    f'policies: {{dir: "{ROOT / "policies"}"}}\nclients: {{default: isp-default}}\n'
    "devices: {kid-an: under16}\n"
    "ratelimit: {ipv4: [{prefix: 32, rate: 1, burst: 2}], "
    "ipv6: [{prefix: 64, rate: 1, burst: 2}], action: drop}\n"
)
WHERE = ("127.0.0.1", 853)


def _resolver():  # type: ignore[no-untyped-def]
    cfg = config.parse(TEXT, "c.yaml")
    return cfg, build_resolver(cfg, build_state(cfg), Stats())


def test_a_known_device_gets_its_profile_from_any_address_without_prepared_answers() -> None:
    cfg, resolver = _resolver()
    client = choose(resolver, cfg.encrypted, "kid-an", "203.0.113.9", WHERE)
    assert isinstance(client, ClientState)
    assert client.profile.name == "under16" and client.allowed and client.memo is None


def test_no_device_means_the_address_profile_unless_ids_are_required() -> None:
    cfg, resolver = _resolver()
    client = choose(resolver, cfg.encrypted, None, "127.0.0.1", WHERE)
    assert isinstance(client, ClientState) and client.profile.name == "isp-default"
    required = cfg.encrypted.__class__(devices=cfg.encrypted.devices, require_device_id=True)
    refusal = choose(resolver, required, None, "127.0.0.1", WHERE)
    assert isinstance(refusal, Refusal) and refusal.text == DEVICE_REQUIRED


def test_an_unknown_device_is_refused_with_ede_18_naming_it() -> None:
    cfg, resolver = _resolver()
    refusal = choose(resolver, cfg.encrypted, "nobody", "127.0.0.1", WHERE)
    assert isinstance(refusal, Refusal)
    query = dns.message.make_query("www.example.test", "A", use_edns=0)
    answer = dns.message.from_wire(refuse(resolver, query.to_wire(), refusal, DOT) or b"")
    assert answer.rcode() == dns.rcode.REFUSED and answer.id == query.id
    (ede,) = [o for o in answer.options if o.otype == dns.edns.EDE]
    assert ede.code == 18 and "'nobody'" in ede.text
    assert refuse(resolver, b"\x00" * 5, refusal, DOT) is None  # not a query: nothing to say


def test_each_device_draws_from_its_own_buckets() -> None:
    cfg, resolver = _resolver()
    now = [0.0]
    limits = DeviceLimits(resolver.ratelimit, lambda: now[0])
    kid = limits.check_for("kid-an")
    lab = limits.check_for("lab-01")
    assert kid is not None and lab is not None
    assert [kid("198.51.100.1") for _ in range(3)] == [Verdict.PASS, Verdict.PASS, Verdict.DROP]
    assert lab("198.51.100.1") is Verdict.PASS  # same address, another device
    now[0] += 1.0
    assert kid("198.51.100.1") is Verdict.PASS  # refilled by the injected clock
    assert DeviceLimits(None, lambda: 0.0).check_for("kid-an") is None
