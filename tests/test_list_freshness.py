"""Tests for resolver.list_freshness: list metrics from the records every refresh writes."""

from __future__ import annotations

import json
from pathlib import Path

from resolver.list_freshness import FreshnessReader
from resolver.lists.fetch import meta_path
from resolver.stats import LabelSets, Stats


def write_record(state_dir: Path, source: str, **meta: float) -> None:
    path = meta_path(state_dir, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta))


def stats() -> Stats:
    return Stats(LabelSets(sources=frozenset({"ut1-adult", "hagezi-doh"})))


def test_the_last_success_of_each_recorded_source_is_exported(tmp_path: Path) -> None:
    write_record(tmp_path, "ut1-adult", last_success=1_700_000_000.0, failures=0)
    write_record(tmp_path, "hagezi-doh", failures=2)
    s = stats()
    reader = FreshnessReader(tmp_path)
    reader.apply(s, reader.collect())
    assert s.list_last_success == {"ut1-adult": 1_700_000_000.0}
    assert s.list_refresh_failures == {"hagezi-doh": 2}


def test_failures_are_counted_once_however_often_the_record_is_read(tmp_path: Path) -> None:
    s, reader = stats(), FreshnessReader(tmp_path)
    for consecutive, total in ((1, 1), (1, 1), (3, 3), (0, 3), (2, 5)):
        write_record(tmp_path, "ut1-adult", failures=consecutive)
        reader.apply(s, reader.collect())
        assert s.list_refresh_failures.get("ut1-adult", 0) == total


def test_no_state_folder_means_no_samples(tmp_path: Path) -> None:
    s = stats()
    reader = FreshnessReader(tmp_path / "missing")
    reader.apply(s, reader.collect())
    assert s.list_last_success == {} and s.list_refresh_failures == {}
