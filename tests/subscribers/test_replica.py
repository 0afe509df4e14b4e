"""The replica: lookups, updates and what each update invalidates (pure, no I/O)."""

from __future__ import annotations

import gc
import ipaddress
import sys

import pytest

from resolver.policy.clients import address_key
from resolver.subscribers.replica import Binding, Replica, canonical_prefix

B1 = Binding("line-1", 1000.0, "10.0.0.1")
B2 = Binding("line-2", 2000.0, "10.0.0.1")


def lookup(replica: Replica, ip: str) -> Binding | None:
    return replica.binding(*address_key(ip))


def test_an_ipv4_binding_is_found_for_its_address_only() -> None:
    replica = Replica()
    affected = replica.apply([("binding", "192.0.2.7", B1)])
    assert lookup(replica, "192.0.2.7") == B1
    assert lookup(replica, "192.0.2.8") is None
    assert affected.addresses == {"192.0.2.7"} and not affected.networks


@pytest.mark.parametrize(
    ("ip", "expected"),
    [("2001:db8:1:2::99", B2), ("2001:db8:1:3::1", B1), ("2001:db8:2::1", None)],
)
def test_ipv6_prefixes_match_the_longest_one(ip: str, expected: Binding | None) -> None:
    replica = Replica()
    replica.apply([("binding", "2001:db8:1::/56", B1), ("binding", "2001:db8:1:2::/64", B2)])
    assert lookup(replica, ip) == expected


def test_removing_a_binding_reports_its_network_and_forgets_it() -> None:
    replica = Replica()
    replica.apply([("binding", "2001:db8:1::/56", B1)])
    affected = replica.apply([("binding", "2001:db8:1::/56", None)])
    assert affected.networks == [ipaddress.ip_network("2001:db8:1::/56")]
    assert lookup(replica, "2001:db8:1::1") is None
    assert replica.bindings_count() == 0


def test_an_update_that_changes_nothing_invalidates_nothing() -> None:
    replica = Replica()
    replica.apply([("binding", "192.0.2.7", B1), ("profile", "line-1", "under16")])
    assert not replica.apply([("binding", "192.0.2.7", B1), ("profile", "line-1", "under16")])


def test_a_profile_change_names_its_subscriber() -> None:
    replica = Replica()
    affected = replica.apply([("profile", "line-1", "under16")])
    assert affected.subscribers == {"line-1"}
    assert replica.profile_counts() == {"under16": 1}
    replica.apply([("profile", "line-1", None)])
    assert replica.profile_counts() == {}


def test_replace_becomes_exactly_the_stores_state() -> None:
    replica = Replica()
    replica.apply([("binding", "192.0.2.7", B1), ("profile", "gone", "under16")])
    affected = replica.replace({"line-2": "under16"}, {"192.0.2.9/32": B2})
    assert lookup(replica, "192.0.2.7") is None and lookup(replica, "192.0.2.9") == B2
    assert replica.profiles == {"line-2": "under16"}
    assert affected.addresses == {"192.0.2.7", "192.0.2.9"}
    assert dict(replica.items()) == {"192.0.2.9/32": B2}


def test_prefixes_are_stored_under_one_spelling() -> None:
    assert canonical_prefix("2001:DB8:0:0::5/64") == "2001:db8::/64"
    assert canonical_prefix("192.0.2.7") == "192.0.2.7/32"


def test_a_serving_replica_keeps_only_the_id_and_ignores_a_new_since() -> None:
    replica = Replica(details=False)
    replica.replace({"line-1": "under16"}, {"192.0.2.7/32": B1})
    assert lookup(replica, "192.0.2.7") == Binding("line-1", 0.0, "")
    later = Binding("line-1", 9999.0, "10.0.0.9")  # an Interim-Update: same line, new time
    assert replica.diff({"line-1": "under16"}, {"192.0.2.7/32": later}) == []
    assert not replica.apply([("binding", "192.0.2.7", later)])
    moved = replica.apply([("binding", "192.0.2.7", B2)])
    assert moved.addresses == {"192.0.2.7"} and lookup(replica, "192.0.2.7").subscriber == "line-2"


def test_a_loaded_replica_holds_each_bound_id_once_and_outside_the_intern_table() -> None:
    # Built at run time, so no other test or constant shares the objects compared here.
    line, profile = "-".join(["line", "shared", "7"]), "-".join(["under", "16"])
    replica = Replica(details=False)
    replica.replace({line: profile}, {"192.0.2.7/32": Binding("".join(line), 1.0, "x")})
    bits, value = address_key("192.0.2.7")
    held = replica.subscriber(bits, value)
    assert held == line and held is next(iter(replica.profiles))  # one object, two tables
    equal = "".join(["line-", "shared-7"])  # an equal string: interning it finds ``held``
    assert sys.intern(equal) is not held  # only if held were in the interpreter's table
    assert replica.subscriber(*address_key("192.0.2.8")) is None


@pytest.mark.parametrize("details", [True, False])
def test_the_hot_path_lookup_names_the_subscriber_of_v4_and_v6_clients(details: bool) -> None:
    replica = Replica(details=details)
    replica.apply([("binding", "192.0.2.7", B1), ("binding", "2001:db8:1::/56", B2)])
    assert replica.subscriber(*address_key("192.0.2.7")) == "line-1"
    assert replica.subscriber(*address_key("2001:db8:1:5::1")) == "line-2"
    assert replica.subscriber(*address_key("2001:db8:2::1")) is None


def test_a_serving_replicas_tables_are_invisible_to_the_garbage_collector() -> None:
    # A million bindings in tracked containers would make every full collection walk them,
    # in the middle of answering; ints and strings only keep the tables untracked.
    replica = Replica(details=False)
    replica.replace(
        {"line-1": "under16"},
        {"192.0.2.7/32": B1, "2001:db8:1::/56": B2},
    )
    replica.apply([("binding", "192.0.2.8", B2), ("profile", "line-2", "under16")])
    tables = [replica.v4, replica.profiles, *replica.v6.values()]
    assert not any(gc.is_tracked(table) for table in tables)
