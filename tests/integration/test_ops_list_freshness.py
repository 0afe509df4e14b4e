"""List freshness reaches /metrics when the shipped timer's `lachan lists update` refreshes
the lists, not only with the in-process refresh (issue 12: ListStale could never fire)."""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.ops_helpers import free_port, start_lachan, wait_until
from tests.stub_upstream import ROOT, StubUpstream, lachan_command


@pytest.fixture
def list_server(tmp_path: Path) -> Iterator[str]:
    served = tmp_path / "www"
    served.mkdir()
    (served / "adult.txt").write_text("fresh-adult.example\nother-adult.example\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def catalogue_with(tmp_path: Path, base_url: str) -> Path:
    """The shipped catalogue plus two downloaded sources: one served, one refused."""
    shipped = yaml.safe_load((ROOT / "blocklists" / "catalogue.yaml").read_text())
    blocklists = ROOT / "blocklists"
    for category in shipped["categories"]:
        category["sources"] = [s for s in category["sources"] if "bundled" in s]
        for source in category["sources"]:
            source["bundled"] = str(blocklists / source["bundled"])
            source.pop("url", None)  # the shipped sources stay offline in this test
        if category["id"] == "adult":
            category["sources"] += [
                {"id": "local-good", "format": "domains", "url": f"{base_url}/adult.txt",
                 "licence": "CC0-1.0", "refresh": "1s"},
                {"id": "local-bad", "format": "domains", "licence": "CC0-1.0", "refresh": "1s",
                 "url": f"http://127.0.0.1:{free_port(('127.0.0.1',))}/gone.txt"},
            ]  # fmt: skip
    if "protected" in shipped:
        shipped["protected"] = str(blocklists / shipped["protected"])
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(shipped))
    return path


def test_lists_update_by_the_timer_feeds_the_freshness_metrics(
    tmp_path: Path, list_server: str
) -> None:
    catalogue = catalogue_with(tmp_path, list_server)
    state = tmp_path / "state"
    metrics_port = free_port(("127.0.0.1",))
    config = (
        f'lists: {{catalogue: "{catalogue}", state_dir: "{state}", refresh_interval: 0}}\n'
        f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}\n'
    )
    (tmp_path / "lachan.yaml").write_text(config)
    update = subprocess.run(
        [*lachan_command(), "lists", "update", "--config",
         str(tmp_path / "lachan.yaml"), "--source", "local-good", "--source", "local-bad"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert "local-bad" in update.stdout + update.stderr
    with StubUpstream(seed=95) as stub:
        server = start_lachan(tmp_path, stub.address, config)
        try:

            def samples() -> dict[str, float]:
                try:
                    url = f"http://127.0.0.1:{metrics_port}/metrics"
                    text = urllib.request.urlopen(url, timeout=3).read().decode()
                except OSError:
                    return {}
                found = re.findall(r'^(lachan_list_\w+)\{[^}]*source="(local-\w+)"[^}]*\} (\S+)',
                                   text, re.M)  # fmt: skip
                return {f"{name}/{source}": float(value) for name, source, value in found}

            assert wait_until(lambda: len(samples()) >= 2, 15), samples()
            found = samples()
            assert found["lachan_list_last_success_timestamp_seconds/local-good"] > 1.7e9
            assert found["lachan_list_refresh_failures_total/local-bad"] >= 1
        finally:
            server.stop()
