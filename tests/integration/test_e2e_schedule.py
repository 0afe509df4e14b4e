"""End to end: under16's schedules switch at the right minute (Asia/Ho_Chi_Minh, injected clock).

lachan runs in-process (``resolver.compose.serve`` in a thread with its own loop) so the wall clock
that policy decisions read can be set by the test; queries are real UDP packets from dnspython.
``tiktok.com`` (social, blocklistproject-tiktok) and ``datarouter.ol.epicgames.com`` (games,
blocklistproject-fortnite) come from the bundled lists. under16 blocks games and social on
school nights Sun-Thu 21:30-06:00 and in school hours Mon-Fri 07:00-11:30 and 13:30-17:00.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from e2e_helpers import (
    INTERNET_V4,
    FakeWallclock,
    InProcessServer,
    InternetStub,
    addresses,
    ask,
    compiled_state_dir,
    ede,
    free_port,
    rcode,
)

from resolver.config import parse

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SOCIAL, GAMES = "tiktok.com", "datarouter.ol.epicgames.com"
_unique = itertools.count()


def at(day: int, hhmm: str) -> float:
    """POSIX time of 2026-11-<day> HH:MM in Vietnam (23 = Monday ... 29 = Sunday, 30 = Monday)."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 11, day, hours, minutes, tzinfo=ZONE).timestamp()


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, FakeWallclock, object]]:
    state = compiled_state_dir(tmp_path_factory.getbasetemp())
    port = free_port(("127.0.0.1",))
    clock = FakeWallclock(at(23, "12:00"))
    with InternetStub() as stub:
        text = f"""
site: {{id: e2e-schedule, kind: other}}
listen: ["127.0.0.1:{port}"]
upstreams: ["{stub.address}"]
lists: {{state_dir: "{state}"}}
"""
        config = parse(text, "e2e-schedule.yaml")
        with InProcessServer(config, clock) as server:
            yield port, clock, server.server


def verdict(port: int, name: str) -> str:
    """'blocked' or 'allowed' for a name never asked before (no memo, no cache)."""
    reply = ask(port, f"c{next(_unique)}.{name}")
    if rcode(reply) == "NXDOMAIN":
        return "blocked"
    assert addresses(reply) == [INTERNET_V4], reply
    return "allowed"


# (day, time, expected) — weekdays: 23 Mon, 26 Thu, 27 Fri, 28 Sat, 29 Sun, 30 Mon.
TABLE = [
    (23, "21:29", "allowed"),  # Monday evening, a minute before the school night
    (23, "21:30", "blocked"),  # the school night starts
    (26, "23:59", "blocked"),  # Thursday night...
    (27, "00:00", "blocked"),  # ...continues over midnight into Friday
    (27, "05:59", "blocked"),
    (27, "06:00", "allowed"),  # end is exclusive
    (27, "06:59", "allowed"),
    (27, "07:00", "blocked"),  # Friday school hours
    (27, "11:30", "allowed"),
    (27, "13:30", "blocked"),
    (27, "21:30", "allowed"),  # Friday night is not a school night
    (28, "00:30", "allowed"),
    (28, "21:30", "allowed"),  # nor Saturday night
    (29, "00:30", "allowed"),
    (29, "21:29", "allowed"),
    (29, "21:30", "blocked"),  # Sunday (end of the ISO week) night is one
    (30, "00:30", "blocked"),  # over the week boundary into Monday
    (30, "06:00", "allowed"),
]


def test_serve_uses_the_injected_wall_clock(running: tuple[int, FakeWallclock, object]) -> None:
    port, clock, _server = running
    clock.now = at(23, "21:29")
    before = verdict(port, SOCIAL)
    clock.now = at(23, "21:30")
    after = verdict(port, SOCIAL)
    assert (before, after) == ("allowed", "blocked")


@pytest.fixture
def clock_in_resolver(
    running: tuple[int, FakeWallclock, object],
) -> Iterator[tuple[int, FakeWallclock]]:
    """Until the bug above is fixed: hand the fake clock to the running Resolver directly."""
    port, clock, server = running
    resolver = server.resolver  # type: ignore[attr-defined]
    original = resolver.wallclock
    resolver.wallclock = clock
    yield port, clock
    resolver.wallclock = original


@pytest.mark.parametrize("name", [SOCIAL, GAMES])
def test_schedule_switches_at_the_minute(
    clock_in_resolver: tuple[int, FakeWallclock], name: str
) -> None:
    port, clock = clock_in_resolver
    seen = []
    for day, hhmm, _expected in TABLE:
        clock.now = at(day, hhmm)
        seen.append((day, hhmm, verdict(port, name)))
    assert seen == TABLE


def test_scheduled_block_says_why(clock_in_resolver: tuple[int, FakeWallclock]) -> None:
    port, clock = clock_in_resolver
    clock.now = at(24, "22:00")  # Tuesday night
    reply = ask(port, f"c{next(_unique)}.{SOCIAL}")
    assert rcode(reply) == "NXDOMAIN"
    assert ede(reply) == [(17, "lachan: blocked category=social profile=under16; help: 111")]
    clock.now = at(28, "22:00")  # Saturday night: the same name resolves
    assert addresses(ask(port, f"c{next(_unique)}.{SOCIAL}")) == [INTERNET_V4]
