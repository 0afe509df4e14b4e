"""Coverage from Prometheus' HTTP API (a loopback stand-in that answers the five queries)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from resolver.coverage.prometheus import QUERIES, prometheus_evidence
from resolver.coverage.registry import Site
from resolver.coverage.status import CoveragePolicy, judge
from resolver.errors import LachanError

NOW = 1_764_288_000
WINDOW = 86400
ANSWERS = {
    QUERIES["live"]: {"school-a": 1, "isp-b": 1},
    QUERIES["last"]: {"school-a": NOW - 10, "isp-b": NOW - 12},
    QUERIES["refreshed"]: {"school-a": NOW - 3600, "isp-b": NOW - 9 * 86400},
    QUERIES["queries"].format(window=WINDOW): {"school-a": 1234.6, "isp-b": 99},
    QUERIES["blocked"].format(window=WINDOW): {"school-a": 17.2, "isp-b": 3},
}
SEEN: list[dict[str, list[str]]] = []


class _Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        params = parse_qs(urlparse(self.path).query)
        SEEN.append(params)
        values = ANSWERS.get(params["query"][0])
        if values is None:
            body = {"status": "error", "error": f"unexpected query {params['query'][0]}"}
        else:
            result = [{"metric": {"site": s}, "value": [NOW, str(v)]} for s, v in values.items()]
            body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_evidence_and_verdicts(api: str) -> None:
    sites = [Site("school-a", "A", "school", "", None, 1, None),
             Site("isp-b", "B", "isp", "", None, 1, None),
             Site("school-c", "C", "school", "", None, 1, None)]  # fmt: skip
    policy = CoveragePolicy(now=NOW, window=WINDOW)
    got = prometheus_evidence(api, sites, policy)
    a = got["school-a"]
    assert (a.live_instances, a.last_report, a.index_age, a.queries, a.blocked) == (
        1, NOW - 10, 3600, 1235, 17)  # fmt: skip
    assert a.signature == "n/a" and SEEN[-1]["time"] == [str(NOW)]
    verdicts = {s.id: judge(s, got[s.id], None, policy) for s in sites}
    assert verdicts["school-a"].covered
    assert verdicts["isp-b"].reasons == ("index not current",)
    assert verdicts["school-c"].reasons == ("live instances 0/1", "index not current",
                                            "no queries in window")  # fmt: skip


def test_unreachable_prometheus_is_one_clear_error() -> None:
    with pytest.raises(LachanError, match="prometheus http://127.0.0.1:9"):
        prometheus_evidence("http://127.0.0.1:9", [], CoveragePolicy(now=NOW), timeout=1)
