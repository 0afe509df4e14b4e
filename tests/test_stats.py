"""Tests for resolver.stats: hot-path counters, folding of unknown labels, merging workers."""

from __future__ import annotations

import json
import threading
import time

import pytest

from resolver import stats
from resolver.stats import TCP, UDP, LabelSets, Stats, WorkerTotals, merge

LABELS = LabelSets(
    categories=frozenset({"adult", "gambling"}),
    profiles=frozenset({"school", "under16"}),
    upstreams=frozenset({"1.1.1.1:53"}),
    sources=frozenset({"ut1-adult"}),
)


def rows(snap: stats.Snapshot, family: str) -> dict[tuple[str, ...], object]:
    return {tuple(labels): value for labels, value in snap[family]}


@pytest.mark.parametrize(
    ("qtype", "name"),
    [(1, "a"), (28, "aaaa"), (65, "https"), (64, "svcb"), (16, "txt"), (255, "any"),
     (99, "other"), (65535, "other"), (0, "other")],
)  # fmt: skip
def test_qtype_class(qtype: int, name: str) -> None:
    assert stats.QTYPE_CLASSES[stats.qtype_class(qtype)] == name


@pytest.mark.parametrize(
    ("seconds", "le"),
    [(0.0, 0.00005), (0.00005, 0.00005), (0.0000501, 0.0001), (0.003, 0.005), (5.0, 5.0)],
)
def test_bucket_index_is_inclusive_upper_bound(seconds: float, le: float) -> None:
    assert stats.DURATION_BUCKETS[stats.bucket_index(seconds)] == le


def test_bucket_index_overflow_goes_to_inf_slot() -> None:
    assert stats.bucket_index(60.0) == len(stats.DURATION_BUCKETS)


def test_queries_and_answers_are_counted() -> None:
    s = Stats(LABELS)
    for _ in range(3):
        s.record_query(UDP, 1)
    s.record_query(TCP, 28)
    s.record_answer(UDP, "blocked", "adult", "school", 0.0002)
    s.record_answer(UDP, "blocked", "adult", "school", 0.0002)
    s.record_answer(TCP, "allowed", "none", "under16", 0.03)
    snap = s.snapshot()
    q = rows(snap, "queries")
    assert q[("udp", "a")] == 3 and q[("tcp", "aaaa")] == 1 and q[("udp", "aaaa")] == 0
    a = rows(snap, "answers")
    assert a == {("blocked", "adult", "school"): 2, ("allowed", "none", "under16"): 1}
    hist = rows(snap, "request_duration")
    udp_counts, udp_sum = hist[("udp",)]  # type: ignore[misc]
    assert sum(udp_counts) == 2 and udp_sum == pytest.approx(0.0004)
    assert udp_counts[stats.bucket_index(0.0002)] == 2


def test_unknown_label_values_fold_into_other() -> None:
    s = Stats(LABELS)
    s.record_answer(UDP, "blocked", "evil.example.com", "192.0.2.7", 0.001)
    s.record_answer(UDP, "weird", "adult", "school", 0.001)
    s.record_rewrite("google")
    s.record_rewrite("www.google.com.vn")
    s.record_bypass("2001:db8::1")
    s.record_upstream("203.0.113.9:53", 0.01)
    s.record_upstream_failure("1.1.1.1:53", "198.51.100.1")
    snap = s.snapshot()
    assert rows(snap, "answers") == {
        ("blocked", "other", "other"): 1,
        ("other", "adult", "school"): 1,
    }
    assert rows(snap, "safesearch_rewrites") == {("google",): 1, ("other",): 1}
    assert rows(snap, "bypass_attempts") == {("other",): 1}
    assert list(rows(snap, "upstream_queries")) == [("other",)]
    assert rows(snap, "upstream_failures") == {("1.1.1.1:53", "other"): 1}


def test_folding_merges_several_unknowns_into_one_row() -> None:
    s = Stats(LABELS)
    for name in ("a.example", "b.example", "c.example"):
        s.record_answer(UDP, "blocked", name, "school", 0.001)
    assert rows(s.snapshot(), "answers") == {("blocked", "other", "school"): 3}


def test_snapshot_is_json_round_trippable_and_mergeable() -> None:
    s = Stats(LABELS)
    s.record_answer(UDP, "blocked", "adult", "school", 0.001)
    s.record_upstream("1.1.1.1:53", 0.02)
    again = json.loads(json.dumps(s.snapshot()))
    merged = merge([again, s.snapshot()])
    assert rows(merged, "answers") == {("blocked", "adult", "school"): 2}
    counts, total = rows(merged, "upstream_duration")[("1.1.1.1:53",)]  # type: ignore[misc]
    assert sum(counts) == 2 and total == pytest.approx(0.04)


def test_merge_sums_counters_and_takes_max_of_timestamps() -> None:
    a, b = Stats(LABELS), Stats(LABELS)
    a.cache_hits, b.cache_hits = 5, 7
    a.record_refresh("ut1-adult", True, now=1000.0)
    b.record_refresh("ut1-adult", True, now=2000.0)
    b.record_refresh("ut1-adult", False, now=2100.0)
    a.set_index_entries({("adult", "ut1-adult"): 219522})
    b.set_index_entries({("adult", "ut1-adult"): 219522})
    m = merge([a.snapshot(), b.snapshot()])
    assert rows(m, "cache_hits") == {(): 12}
    assert rows(m, "list_last_success") == {("ut1-adult",): 2000.0}
    assert rows(m, "list_refresh_failures") == {("ut1-adult",): 1}
    assert rows(m, "index_entries") == {("adult", "ut1-adult"): 219522}


def test_cache_entries_read_from_the_cache_owner() -> None:
    s = Stats(LABELS)
    assert rows(s.snapshot(), "cache_entries") == {(): 0}
    s.cache_size = lambda: 42
    assert rows(s.snapshot(), "cache_entries") == {(): 42}


def test_reload_counts_and_timestamp() -> None:
    s = Stats(LABELS)
    s.record_reload(True, now=10.0)
    s.record_reload(False, now=20.0)
    snap = s.snapshot()
    assert rows(snap, "config_reloads") == {(): 2}
    assert rows(snap, "config_reload_failures") == {(): 1}
    assert rows(snap, "config_last_reload_success") == {(): 10.0}


def test_worker_totals_stay_monotonic_when_a_worker_restarts() -> None:
    totals = WorkerTotals()
    w1, w2 = Stats(LABELS), Stats(LABELS)
    w1.cache_hits, w2.cache_hits = 10, 4
    w1.cache_size = lambda: 100
    totals.update(1, w1.snapshot())
    totals.update(2, w2.snapshot())
    assert rows(totals.total(), "cache_hits") == {(): 14}
    assert rows(totals.total(), "cache_entries") == {(): 100}
    totals.retire(1)  # worker 1 died; its replacement starts from zero
    fresh = Stats(LABELS)
    fresh.cache_hits = 1
    totals.update(3, fresh.snapshot())
    assert rows(totals.total(), "cache_hits") == {(): 15}
    assert rows(totals.total(), "cache_entries") == {(): 0}  # a dead cache holds nothing


def test_supervisor_extra_snapshot_is_added() -> None:
    totals, sup = WorkerTotals(), Stats(LABELS)
    sup.worker_restarts, sup.workers = 2, 4
    snap = totals.total(sup.snapshot())
    assert rows(snap, "worker_restarts") == {(): 2} and rows(snap, "workers") == {(): 4}


def test_label_sets_swap_on_reload() -> None:
    s = Stats(LabelSets())
    s.record_answer(UDP, "blocked", "adult", "school", 0.001)
    assert rows(s.snapshot(), "answers") == {("blocked", "other", "other"): 1}
    s.labels = LABELS
    assert rows(s.snapshot(), "answers") == {("blocked", "adult", "school"): 1}


def test_snapshot_from_another_thread_while_the_loop_writes() -> None:
    s = Stats(LABELS)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                s.snapshot()
        except BaseException as e:  # pragma: no cover - the failure being tested for
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    deadline = time.monotonic() + 0.5
    n = 0
    while time.monotonic() < deadline and n < 200_000:
        s.record_answer(UDP, "blocked", ("adult", "gambling")[n % 2], f"p{n % 50}", 0.001)
        s.record_upstream(f"10.0.0.{n % 50}:53", 0.001)
        n += 1
    stop.set()
    t.join(timeout=5)
    assert not errors
    assert sum(v for _, v in s.snapshot()["answers"]) == n


def test_every_family_is_in_a_snapshot() -> None:
    assert set(Stats(LABELS).snapshot()) == set(stats.FAMILIES)
