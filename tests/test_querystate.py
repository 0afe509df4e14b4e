"""bypass_kind: the bounded anti-bypass label a block is counted under."""

from __future__ import annotations

import pytest

from resolver.policy.decision import AnswerMode, Block, Reason
from resolver.querystate import bypass_kind


def _block(category: str, reason: Reason = Reason.CATEGORY, rule: str = "x.example") -> Block:
    return Block(category, "src", rule, reason, 17, "", AnswerMode.NXDOMAIN, 300, "under16")


@pytest.mark.parametrize(
    ("block", "kind"),
    [
        (_block("vpn-proxy"), "vpn"),
        (_block("doh"), "doh"),  # a public resolver's DoH/DoT endpoint
        (_block("adult"), None),
        (_block("bypass", Reason.BYPASS, "use-application-dns.net"), "canary"),
        (_block("bypass", Reason.BYPASS, "mask.icloud.com"), "private_relay"),
        (_block("bypass", Reason.BYPASS, "*.resolver.arpa"), "doh"),
    ],
)
def test_each_bypass_block_has_its_label(block: Block, kind: str | None) -> None:
    assert bypass_kind(block) == kind
