"""The status page's rows from the counters snapshot: per upstream, per list, live blocks."""

from __future__ import annotations

import dataclasses

from resolver import config
from resolver.console.status import encrypted_endpoints, list_rows, live_activity, upstream_rows


def test_upstream_rows_sum_failures_of_every_reason() -> None:
    cfg = config.parse("upstreams: [127.0.0.1:5300, 127.0.0.2]\n", "t")
    snapshot = {
        "upstream_queries": [[["127.0.0.1:5300"], 7]],
        "upstream_failures": [
            [["127.0.0.1:5300", "timeout"], 2],
            [["127.0.0.1:5300", "refused"], 1],
        ],
    }
    assert upstream_rows(cfg, snapshot) == [("127.0.0.1:5300", 7, 3), ("127.0.0.2:53", 0, 0)]


def test_list_rows_give_hours_since_the_last_download_or_a_dash() -> None:
    sources = {"b-list": {"entries": 5}, "a-list": {"entries": 9}}
    snapshot = {"list_last_success": [[["a-list"], 1000.0]]}
    assert list_rows(sources, snapshot, 1000.0 + 7200) == [("a-list", 9, "2 h"), ("b-list", 5, "-")]


def test_live_activity_counts_blocks_per_category_over_profiles() -> None:
    snapshot = {
        "queries": [[["udp", "a"], 10], [["tcp", "a"], 2]],
        "answers": [[["blocked", "adult", "school"], 3], [["blocked", "adult", "under16"], 1],
                    [["allowed", "none", "school"], 8]],
    }  # fmt: skip
    assert live_activity(snapshot) == {"queries": 12, "blocks": {"adult": 4}}


def test_encrypted_endpoints_are_listed_when_set_up() -> None:
    plain = config.parse("upstreams: [127.0.0.1]\n", "t")
    assert encrypted_endpoints(plain) == []
    served = dataclasses.replace(plain, encrypted=dataclasses.replace(
        plain.encrypted, listen_tls=(("192.168.10.53", 853),),
        listen_https=(("192.168.10.53", 443), ("::", 443))))  # fmt: skip
    assert encrypted_endpoints(served) == [
        "DoT 192.168.10.53:853", "DoH 192.168.10.53:443", "DoH [::]:443"]  # fmt: skip
