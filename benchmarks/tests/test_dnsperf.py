"""dnsperf output parsing, on real dnsperf 2.10 output (one answered run, one all-lost run)."""

from collections import Counter

import pytest
from dnsperf import BUCKET_S, parse, percentiles

ANSWERED = """DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 5391 -d q.txt -n 1 -v
> NOERROR a.example.com A 0.000236
> NOERROR b.example.org AAAA 0.003448
> T c.example.net A
[Status] Testing complete (end of file)

Statistics:

  Queries sent:         3
  Queries completed:    2 (66.67%)
  Queries lost:         1 (33.33%)

  Response codes:       NOERROR 1 (50.00%), NXDOMAIN 1 (50.00%)
  Average packet size:  request 31, response 99
  Run time (s):         0.004661
  Queries per second:   429.092469

  Average Latency (s):  0.001842 (min 0.000236, max 0.003448)
  Latency StdDev (s):   0.002271
"""

ALL_LOST = """[Status] Command line: dnsperf -s 127.0.0.1 -p 5399 -d q1.txt -n 1 -t 1 -v
> T a.example.com A
Statistics:

  Queries sent:         1
  Queries completed:    0 (0.00%)
  Queries lost:         1 (100.00%)

  Response codes:
  Run time (s):         0.001307
  Queries per second:   0.000000

  Average Latency (s):  0.000000 (min 0.000000, max 0.000000)
"""


def test_summary_and_latencies():
    out = parse(ANSWERED.splitlines(keepends=True))
    assert (out["sent"], out["completed"], out["lost"]) == (3, 2, 1)
    assert out["qps"] == pytest.approx(429.092469)
    assert out["avg_s"] == pytest.approx(0.001842)
    assert out["max_s"] == pytest.approx(0.003448)
    assert out["rcodes"] == {"NOERROR": 1, "NXDOMAIN": 1}
    # Timed-out "> T" lines carry no latency; the two answered ones land in their buckets.
    assert out["p50_s"] == pytest.approx(0.00024)
    assert out["p99_s"] == pytest.approx(0.00345)
    assert "error" not in out


def test_all_lost_has_no_percentiles():
    out = parse(ALL_LOST.splitlines(keepends=True))
    assert out["lost"] == 1 and out["qps"] == 0.0
    assert "p99_s" not in out


def test_missing_summary_is_an_error():
    assert "error" in parse(["dnsperf: invalid option -- 'z'\n"])


@pytest.mark.parametrize(
    ("hist", "p50", "p99"),
    [
        (Counter({10: 100}), 11 * BUCKET_S, 11 * BUCKET_S),
        (Counter({1: 98, 500: 2}), 2 * BUCKET_S, 501 * BUCKET_S),  # the slow 2% decide p99
        (Counter({1: 99, 500: 1}), 2 * BUCKET_S, 2 * BUCKET_S),
    ],
)
def test_percentiles_use_bucket_upper_edges(hist, p50, p99):
    out = percentiles(hist)
    assert out["p50_s"] == pytest.approx(p50)
    assert out["p99_s"] == pytest.approx(p99)
