"""Tests for resolver.querylog: masking, daily hash keys, rotation and retention on a fake clock."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from resolver.errors import ConfigError
from resolver.querylog import (
    DailyKeys,
    QueryLog,
    QueryLogConfig,
    hash_address,
    rotated_files,
    truncate_address,
)

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def counting_random() -> tuple[list[int], DailyKeys]:
    made: list[int] = []

    def rnd(n: int) -> bytes:
        made.append(n)
        return bytes([len(made)]) * n

    return made, DailyKeys(rnd)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def log_one(q: QueryLog, client: str = "192.0.2.77", qname: str = "example.vn") -> None:
    q.log(client, qname, 1, "allowed", "none", "school", 0)


@pytest.mark.parametrize(
    ("addr", "v4", "v6", "expected"),
    [("192.0.2.77", 24, 48, "192.0.2.0/24"),
     ("10.1.2.3", 16, 48, "10.1.0.0/16"),
     ("2001:db8:1:2:3::5", 24, 48, "2001:db8:1::/48"),
     ("2001:db8:1:2ff:3::5", 24, 56, "2001:db8:1:200::/56"),
     ("::ffff:198.51.100.9", 24, 48, "198.51.100.0/24"),
     ("fe80::1%eth0", 24, 64, "fe80::/64"),
     ("203.0.113.5", 32, 128, "203.0.113.5/32")],
)  # fmt: skip
def test_truncate_address(addr: str, v4: int, v6: int, expected: str) -> None:
    assert truncate_address(addr, v4, v6) == expected


def test_hash_is_keyed_stable_and_hides_the_address() -> None:
    k1, k2 = b"a" * 32, b"b" * 32
    h = hash_address("192.0.2.77", k1)
    assert h == hash_address("192.0.2.77", k1) and h.startswith("h:") and len(h) == 18
    assert h != hash_address("192.0.2.78", k1)
    assert h != hash_address("192.0.2.77", k2)
    assert len({hash_address(f"192.0.2.{i}", k1) for i in range(256)}) == 256


def test_daily_keys_rotate_and_old_keys_are_forgotten() -> None:
    made, keys = counting_random()
    d1 = date(2026, 3, 1)
    assert keys.key_for(d1) == keys.key_for(d1) and len(made) == 1
    d2 = d1 + timedelta(days=1)
    assert keys.key_for(d2) != keys.key_for(d1) and len(made) == 2
    keys.key_for(d1 + timedelta(days=3))
    assert keys.days() == [d1 + timedelta(days=3)]


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"rotate": "weekly"}, "querylog.rotate"), ({"client": "raw"}, "querylog.client"),
     ({"retention_days": 0}, "querylog.retention_days"),
     ({"ipv4_prefix": 33}, "ipv4_prefix"), ({"max_bytes": 10}, "max_bytes")],
)  # fmt: skip
def test_config_is_validated(tmp_path: Path, kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        QueryLogConfig(path=tmp_path / "q.jsonl", **kwargs)  # type: ignore[arg-type]


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        QueryLog(QueryLogConfig(path=tmp_path / "nope" / "q.jsonl"))


def test_nothing_is_written_until_flush_and_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    q = QueryLog(QueryLogConfig(path=path), clock=FakeClock())
    log_one(q)
    assert not path.exists()
    assert q.flush() == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (rec,) = lines(path)
    assert rec == {
        "ts": "2026-03-01T10:00:00.000+00:00", "client": "192.0.2.0/24", "qname": "example.vn",
        "qtype": "A", "action": "allowed", "category": "none", "profile": "school", "rcode": 0,
    }  # fmt: skip
    assert "192.0.2.77" not in path.read_text()


def test_hash_mode_links_within_a_day_but_not_across_days(tmp_path: Path) -> None:
    path, clock = tmp_path / "q.jsonl", FakeClock()
    _, keys = counting_random()
    q = QueryLog(QueryLogConfig(path=path, client="hash"), clock=clock, keys=keys)
    log_one(q)
    clock.now += 3600
    log_one(q)
    clock.now += DAY
    log_one(q)
    q.close()
    today = [r["client"] for r in lines(path)]
    (yesterday,) = rotated_files(path)
    earlier = [r["client"] for r in lines(yesterday)]
    assert earlier[0] == earlier[1] and earlier[0] != today[0]
    assert all(str(c).startswith("h:") for c in earlier + today)
    assert "192.0.2" not in path.read_text() + yesterday.read_text()


def test_unparsable_client_is_never_written_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    q = QueryLog(QueryLogConfig(path=path), clock=FakeClock())
    log_one(q, client="not-an-ip-secret")
    q.flush()
    assert lines(path)[0]["client"] == "invalid"


def test_daily_rotation_in_the_site_time_zone(tmp_path: Path) -> None:
    path, clock = tmp_path / "q.jsonl", FakeClock(T0 + 6.5 * 3600)  # 16:30 UTC = 23:30 UTC+7
    vn = timezone(timedelta(hours=7))
    q = QueryLog(QueryLogConfig(path=path, tz=vn), clock=clock)
    log_one(q, qname="before-midnight.vn")
    clock.now += 3600  # 00:30 in Hanoi, still 1 March in UTC
    log_one(q, qname="after-midnight.vn")
    q.flush()  # one flush, records of two days: split across files
    (old,) = rotated_files(path)
    assert [r["qname"] for r in lines(old)] == ["before-midnight.vn"]
    assert [r["qname"] for r in lines(path)] == ["after-midnight.vn"]
    assert lines(path)[0]["ts"] == "2026-03-02T00:30:00.000+07:00"


def test_size_rotation(tmp_path: Path) -> None:
    path, clock = tmp_path / "q.jsonl", FakeClock()
    q = QueryLog(QueryLogConfig(path=path, rotate="size", max_bytes=4096), clock=clock)
    for i in range(200):  # ~150 bytes a line: ~30 KB in all
        log_one(q, qname=f"name-{i:04d}.example.vn")
        if i % 10 == 9:
            q.flush()
            clock.now += 1
    q.close()
    files = [*rotated_files(path), path]
    assert len(files) >= 6
    assert all(f.stat().st_size <= 4096 for f in files)
    names = [r["qname"] for f in files for r in lines(f)]
    assert names == [f"name-{i:04d}.example.vn" for i in range(200)]  # nothing lost, in order


def test_retention_deletes_rotated_files_older_than_n_days(tmp_path: Path) -> None:
    path, clock = tmp_path / "q.jsonl", FakeClock()
    q = QueryLog(QueryLogConfig(path=path, retention_days=3), clock=clock)
    for _ in range(10):  # ten days, one record a day: nine rotations
        log_one(q)
        q.flush()
        clock.now += DAY
    rotated = rotated_files(path)
    # Rotated at the first flush of days 2..10; those at or within 3 days of day 10 remain.
    assert len(rotated) == 4
    stamps = [datetime.strptime(p.name.rsplit(".", 1)[1], "%Y%m%dT%H%M%SZ") for p in rotated]
    assert stamps[0].date() == date(2026, 3, 7) and stamps[-1].date() == date(2026, 3, 10)


def test_retention_sweeps_without_rotation_too(tmp_path: Path) -> None:
    path, clock = tmp_path / "q.jsonl", FakeClock()
    stale = path.with_name("q.jsonl.20260101T000000Z")
    fresh = path.with_name("q.jsonl.20260228T000000Z")
    stale.write_text("{}\n")
    fresh.write_text("{}\n")
    q = QueryLog(QueryLogConfig(path=path, retention_days=7), clock=clock)
    log_one(q)
    q.flush()
    assert not stale.exists() and fresh.exists()


def test_restart_appends_to_todays_file_and_rotates_yesterdays(tmp_path: Path) -> None:
    path, clock = tmp_path / "q.jsonl", FakeClock()
    first = QueryLog(QueryLogConfig(path=path), clock=clock)
    log_one(first, qname="one.vn")
    first.close()
    again = QueryLog(QueryLogConfig(path=path), clock=clock)
    log_one(again, qname="two.vn")
    again.close()
    assert [r["qname"] for r in lines(path)] == ["one.vn", "two.vn"] and not rotated_files(path)
    clock.now += DAY
    third = QueryLog(QueryLogConfig(path=path), clock=clock)
    log_one(third, qname="three.vn")
    third.close()
    assert [r["qname"] for r in lines(path)] == ["three.vn"]
    assert len(rotated_files(path)) == 1


def test_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    q = QueryLog(QueryLogConfig(path=tmp_path / "q.jsonl", max_buffer=5), clock=FakeClock())
    for _ in range(8):
        log_one(q)
    assert q.dropped == 3 and q.flush() == 5


def test_records_taken_from_a_worker_are_written_by_the_one_writer(tmp_path: Path) -> None:
    worker = QueryLog(QueryLogConfig(path=tmp_path / "w.jsonl"), clock=FakeClock())
    writer = QueryLog(QueryLogConfig(path=tmp_path / "q.jsonl", max_buffer=3), clock=FakeClock())
    for i in range(4):
        log_one(worker, qname=f"n{i}.vn")
    taken = worker.take()
    assert len(taken) == 4 and worker.take() == []
    assert not (tmp_path / "w.jsonl").exists()  # the worker itself writes nothing
    writer.extend(taken)
    assert writer.dropped == 1  # its buffer bound holds for shipped records too
    assert writer.flush() == 3
    assert [line["qname"] for line in lines(tmp_path / "q.jsonl")] == ["n0.vn", "n1.vn", "n2.vn"]
