"""A SIGHUP applies what a reload can (site labels) and names what needs a restart (issue 12)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from tests.integration.ops_helpers import (
    config_path,
    free_port,
    metric,
    signal_process,
    start_lachan,
    wait_until,
)
from tests.stub_upstream import StubUpstream

CONFIG = """\
site: {{id: {site}, kind: school}}
metrics: {{listen: "127.0.0.1:{metrics}"}}
cache: {{size: {cache}}}
"""


def site_labels(port: int) -> set[str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:  # not listening yet
        return set()
    return set(re.findall(r'site="([^"]*)"', text))


@pytest.mark.parametrize("workers", [None, 2])
def test_a_reload_that_changes_site_id_relabels_every_metric(
    tmp_path: Path, workers: int | None
) -> None:
    port = free_port(("127.0.0.1",))
    with StubUpstream(seed=93) as stub:
        server = start_lachan(
            tmp_path,
            stub.address,
            CONFIG.format(site="old-site", metrics=port, cache=1000),
            workers,
        )
        try:
            assert wait_until(lambda: site_labels(port) == {"old-site"}, 15)
            path = config_path(server)
            text = path.read_text()
            text = text.replace("id: old-site", "id: new-site").replace("size: 1000", "size: 2000")
            path.write_text(text)
            signal_process(server)
            assert wait_until(lambda: site_labels(port) == {"new-site"}, 15), site_labels(port)
            assert wait_until(lambda: "take effect after a restart: cache" in server.stderr(), 5)
        finally:
            server.stop()
    assert "Traceback" not in server.stderr()


def test_index_entries_are_exported_per_category_and_source(tmp_path: Path) -> None:
    # Issue 12: lachan_index_entries had HELP and TYPE lines but never a sample.
    port = free_port(("127.0.0.1",))
    with StubUpstream(seed=94) as stub:
        server = start_lachan(
            tmp_path, stub.address, CONFIG.format(site="entries", metrics=port, cache=1000)
        )
        try:
            assert wait_until(lambda: (metric(port, "lachan_index_entries") or 0) > 100_000, 15)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
                text = r.read().decode()
            assert re.search(r'lachan_index_entries\{category="adult",[^}]*source="[^"]+"', text)
        finally:
            server.stop()
