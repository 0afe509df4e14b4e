"""The server's periodic list refresh survives any failure and keeps the last good index."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from list_http import serving, write_catalogue

from resolver.config import Config, ListsSettings
from resolver.list_freshness import REFRESH_CRASH, FreshnessReader, refresh_lists
from resolver.stats import Stats


@pytest.fixture
def server() -> Iterator[str]:
    with serving() as base:
        yield base


def _config(tmp_path: Path, opts: list[str]) -> Config:
    lists = ListsSettings(catalogue=Path(opts[1]), state_dir=Path(opts[3]))
    return Config(source="test", lists=lists)


def test_a_malformed_source_is_counted_and_the_others_still_reload(
    tmp_path: Path,
    server: str,
) -> None:
    opts = write_catalogue(tmp_path, [f"{server}/badlength", f"{server}/good"])
    stats, reloads = Stats(), []

    async def reload() -> None:
        reloads.append(1)

    asyncio.run(refresh_lists(_config(tmp_path, opts), stats, reload))
    # Per-source figures reach metrics from the state folder, as with the timer's update.
    reader = FreshnessReader(Path(opts[3]))
    reader.apply(stats, reader.collect())
    assert stats.list_refresh_failures == {"s00": 1}
    assert set(stats.list_last_success) == {"s01"}
    assert reloads == [1]


def test_a_refresh_that_fails_as_a_whole_is_logged_counted_and_not_raised(
    tmp_path: Path,
    server: str,
    caplog: object,
) -> None:
    opts = write_catalogue(tmp_path, [f"{server}/good"])
    stats = Stats()

    async def reload() -> None:
        raise RuntimeError("the new index would not map")

    asyncio.run(refresh_lists(_config(tmp_path, opts), stats, reload))
    assert stats.list_refresh_failures == {REFRESH_CRASH: 1}
    text = caplog.text  # type: ignore[attr-defined]
    assert "list refresh failed, last good index kept: RuntimeError" in text
