"""Judging a registered site from its chains: covered, chain state and the reason if not."""

from __future__ import annotations

from resolver.collector.chain import Tip
from resolver.collector.status import judge_site
from resolver.coverage.registry import Site

NOW = 1_764_288_000
SCHOOL = Site("thpt-a", "THPT A", "school", "Phường 1", None, 1, None, "Quận 1")


def tip(end: int, state: str = "valid", period: int = 3600, index_age: int = 3600,
        idle: int = 0) -> Tip:  # fmt: skip
    return Tip(7, "d" * 64, end, period, end - index_age, state, end - idle)


def test_a_site_that_reported_last_period_is_covered() -> None:
    status = judge_site(SCHOOL, [tip(NOW - 600)], {}, NOW)
    assert (status.covered, status.chain, status.reason, status.last_seq) == (True, "valid", "", 7)


def test_a_site_with_no_record_for_more_than_two_periods_is_silent() -> None:
    assert judge_site(SCHOOL, [tip(NOW - 7200)], {}, NOW).chain == "valid"
    status = judge_site(SCHOOL, [tip(NOW - 7201)], {}, NOW)
    assert (status.covered, status.chain, status.reason) == (False, "silent", "silent")


def test_a_short_period_makes_silence_come_sooner() -> None:
    assert judge_site(SCHOOL, [tip(NOW - 3, period=1)], {}, NOW).chain == "silent"


def test_a_site_never_heard_of_is_not_covered() -> None:
    status = judge_site(SCHOOL, [], {}, NOW)
    assert (status.covered, status.chain, status.last_seq) == (False, "never", None)


def test_a_rewritten_chain_outranks_a_broken_one_and_is_never_covered() -> None:
    status = judge_site(SCHOOL, [tip(NOW, "broken"), tip(NOW, "rewritten")], {}, NOW)
    assert (status.covered, status.chain) == (False, "rewritten")
    assert judge_site(SCHOOL, [tip(NOW, "broken")], {}, NOW).chain == "broken"


def test_stale_lists_or_too_few_instances_leave_the_chain_valid_but_uncovered() -> None:
    stale = judge_site(SCHOOL, [tip(NOW, index_age=49 * 3600)], {}, NOW)
    assert (stale.chain, stale.covered, stale.reason) == ("valid", False, "stale")
    isp = Site("isp-x", "ISP X", "isp", "", None, 2, None, "")
    short = judge_site(isp, [tip(NOW), tip(NOW - 9000)], {}, NOW)
    assert (short.covered, short.reason, short.live_instances) == (False, "instances", 1)


def test_a_site_whose_resolver_answered_nothing_for_a_day_is_not_covered() -> None:
    assert judge_site(SCHOOL, [tip(NOW, idle=24 * 3600)], {}, NOW).covered
    status = judge_site(SCHOOL, [tip(NOW, idle=24 * 3600 + 1)], {}, NOW)
    assert (status.chain, status.covered, status.reason) == ("valid", False, "unused")
