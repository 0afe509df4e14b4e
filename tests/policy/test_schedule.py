"""Schedules: windows over midnight and across the week boundary, in the site's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from policy_helpers import at

from resolver.policy.decide import decide
from resolver.policy.decision import ALLOW, Block, Reason
from resolver.policy.schedule import Window, local_clock, parse_hhmm, parse_weekday

GAME = "roblox.com"
SOCIAL = "facebook.com"

# under16: games/social blocked Sun-Thu 21:30-06:00 (next day), Mon-Fri 07:00-11:30 and
# 13:30-17:00. 2026-11-29 is a Sunday, 2026-12-04 a Friday, 2026-12-05 a Saturday.
UNDER16 = [
    ("2026-11-29 21:29", False),  # Sunday just before the school night
    ("2026-11-29 21:30", True),  # Sunday night starts: across the week boundary into Monday
    ("2026-11-30 00:00", True),  # Monday midnight, still Sunday's night
    ("2026-11-30 05:59", True),
    ("2026-11-30 06:00", False),  # end is exclusive
    ("2026-11-30 06:59", False),
    ("2026-11-30 07:00", True),  # Monday morning session
    ("2026-11-30 11:29", True),
    ("2026-11-30 11:30", False),  # lunch break
    ("2026-11-30 13:30", True),
    ("2026-11-30 16:59", True),
    ("2026-11-30 17:00", False),  # after school
    ("2026-12-03 23:00", True),  # Thursday night
    ("2026-12-04 02:00", True),  # ... into Friday morning
    ("2026-12-04 21:30", False),  # Friday night is free
    ("2026-12-05 02:00", False),  # so is early Saturday
    ("2026-12-05 10:00", False),  # Saturday has no school hours
    ("2026-12-06 21:29", False),
    ("2026-12-06 23:59", True),  # Sunday night again
]


@pytest.mark.parametrize(("when", "blocked"), UNDER16)
def test_under16_games_and_social(profiles, lists, when, blocked) -> None:
    for name in (GAME, SOCIAL):
        decision = decide(profiles["under16"], name, 1, at(when), lists)
        if blocked:
            assert isinstance(decision, Block), (when, name)
            assert decision.reason is Reason.SCHEDULE and decision.ede == 17
        else:
            assert decision is ALLOW, (when, name)


def test_schedule_uses_the_site_zone_not_utc(profiles, lists) -> None:
    # 14:45 UTC on Sunday is 21:45 in Ho Chi Minh City (UTC+7): blocked there.
    utc = datetime(2026, 11, 29, 14, 45, tzinfo=ZoneInfo("UTC")).timestamp()
    assert isinstance(decide(profiles["under16"], GAME, 1, utc, lists), Block)
    assert local_clock(utc, ZoneInfo("Asia/Ho_Chi_Minh")) == (6, 21 * 60 + 45)


def test_window_table() -> None:
    night = Window(frozenset({6}), parse_hhmm("22:00"), parse_hhmm("02:00"), frozenset({"x"}))
    assert night.active(6, 22 * 60) and night.active(0, 60)  # Sunday 22:00, Monday 01:00
    assert not night.active(0, 22 * 60)  # Monday 22:00 is not listed
    assert not night.active(5, 60)  # Saturday 01:00 belongs to Friday's night
    day = Window(frozenset({0}), 0, 0, frozenset({"x"}))
    assert not day.active(0, 0)  # an empty same-start/end window never fires


def test_daylight_saving_zone_follows_wall_clock() -> None:
    # Europe/Berlin switches to summer time on 2026-03-29; 21:30 local both sides of it.
    zone = ZoneInfo("Europe/Berlin")
    for day in (28, 29, 30):
        ts = datetime(2026, 3, day, 21, 30, tzinfo=zone).timestamp()
        assert local_clock(ts, zone)[1] == 21 * 60 + 30


@pytest.mark.parametrize(
    ("text", "minutes"), [("00:00", 0), ("6:05", 365), ("21:30", 1290), ("24:00", 1440)]
)
def test_parse_hhmm(text, minutes) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["25:00", "24:01", "7", "07:60", "noon", ""])
def test_parse_hhmm_rejects(text) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(text)


def test_parse_weekday() -> None:
    assert [parse_weekday(d) for d in ("Mon", "tuesday", "SUN")] == [0, 1, 6]
    for bad in ("Funday", "Mo", "sunny"):
        with pytest.raises(ValueError, match="unknown weekday"):
            parse_weekday(bad)
