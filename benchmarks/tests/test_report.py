"""Target verdicts and tables from hand-made result rows."""

from report import Verdict, averages, markdown, verdicts


def case(peer, wl, qps, p99=0.001, rnd=1):
    return {"peer": peer, "workload": wl, "round": rnd, "qps": qps, "avg_s": p99 / 2, "p99_s": p99}


PEER_RECS = [
    {
        "peer": "lachan",
        "round": 1,
        "list_loaded": True,
        "rss_kib": 40 * 1024,
        "rss_empty_kib": 37 * 1024,
        "ready_s": 0.15,
        "ready_empty_s": 0.12,
        "ready_first_s": 1.4,
    },
    {"peer": "lachan", "round": 2, "list_loaded": True, "rss_kib": 40 * 1024, "ready_s": 0.17},
]
CASES = [
    case("lachan", "hit", 120_000),
    case("lachan", "hit", 100_000, rnd=2),
    case("lachan", "miss", 15_000, p99=0.004),
    case("lachan", "blocked", 130_000),
    case("dnsmasq", "hit", 250_000),
    case("dnsmasq", "blocked", 4_000),
    case("unbound", "miss", 40_000),
    case("baseline-dnslib", "hit", 3_000),
    case("baseline-dnslib", "miss", 3_000),
    case("pdns-recursor", "blocked", 60_000),
]


def by_target(vs):
    return {v.target: v for v in vs}


def test_averages_are_means_over_rounds():
    assert averages(CASES)[("lachan", "hit")]["qps"] == 110_000


def test_verdicts():
    v = by_target(verdicts(CASES, PEER_RECS))
    assert v["cache-hit QPS >= 40% of dnsmasq"].ok is True  # 110k >= 100k
    assert v["cache-miss QPS >= 50% of unbound"].ok is False  # 15k < 20k
    assert v["cache-miss QPS >= 20x naive dnslib"].ok is False  # 5x
    saturated = "saturating closed loop, 1,000 outstanding"
    assert v[f"hit p99 <= 2 ms ({saturated})"].ok is True
    assert v[f"miss p99 <= 2 ms ({saturated})"].ok is False
    assert v["hit-paced p99 <= 2 ms (saturating closed loop, 1,000 outstanding)"].ok is None
    assert v["blocked QPS >= 1.5x pdns-recursor"].ok is True
    assert v["blocked QPS >= 10x dnsmasq"].ok is True
    assert v["lachan blocked QPS >= lachan cache-hit"].ok is True
    assert v["added RSS for the list <= 4 MiB"].measured.startswith("3.0 MiB")
    assert v["ready <= 0.2 s"].ok is True


def test_without_the_list_blocking_targets_are_not_judged():
    recs = [dict(r, list_loaded=False) for r in PEER_RECS]
    v = by_target(verdicts(CASES, recs))
    assert v["blocked QPS >= 10x dnsmasq"].ok is None
    assert v["added RSS for the list <= 4 MiB"].ok is None
    assert v["cache-hit QPS >= 40% of dnsmasq"].ok is True  # forwarding targets still apply


def test_missing_peer_is_not_applicable():
    v = by_target(verdicts([case("lachan", "hit", 1)], PEER_RECS))
    assert v["cache-hit QPS >= 40% of dnsmasq"].line().startswith("N/A")


def test_markdown_has_ratio_and_verdicts():
    res = {
        "started_utc": "2026-11-28T16:00:00+00:00",
        "setup": ["Machine: test"],
        "settings": {"workloads": ["hit", "blocked", "miss"]},
        "inputs": {"workloads": {"hit": "1,000 names"}},
        "peers": PEER_RECS + [{"peer": "dnsmasq", "round": 1, "rss_kib": 1024}],
        "cases": CASES,
        "scaling": [],
        "verdicts": [vars(x) for x in verdicts(CASES, PEER_RECS)],
    }
    md = markdown(res)
    assert "| dnsmasq | 250,000 (lachan 0.44x)" in md
    assert "PASS  cache-hit QPS >= 40% of dnsmasq" in md
    assert Verdict("x", "y", False).line() == "FAIL  x: y"


def test_paced_p99_names_its_rate():
    paced = dict(case("lachan", "miss-paced", 5_000, p99=0.0015), paced_qps=5_000)
    v = by_target(verdicts(CASES + [paced], PEER_RECS))
    assert v["miss-paced p99 <= 2 ms (paced at 5,000 QPS)"].ok is True


def scaling_row(wl, workers, qps, per_cpu):
    return {"peer": "lachan", "workload": wl, "workers": workers, "round": 1, "qps": qps,
            "qps_per_peer_cpu_s": per_cpu, "dnsperf_cpu_pct": 95.0}  # fmt: skip


def scaling_verdict(paced_1, paced_2):
    rows = [
        scaling_row("hit", 1, 110_000, 115_000),
        scaling_row("hit", 2, 95_000, 100_000),
        scaling_row("hit-paced", 1, 40_000, paced_1),
        scaling_row("hit-paced", 2, 80_000, paced_2),
    ]
    (verdict,) = [v for v in verdicts(CASES, PEER_RECS, rows) if "workers" in v.target]
    return verdict


def test_scaling_judges_cpu_per_query_at_equal_load_per_worker():
    assert scaling_verdict(70_000, 66_500).ok is True  # 2 x 0.95 = 1.9x
    contended = scaling_verdict(70_000, 56_000)  # 2 x 0.8 = 1.6x: workers get in each other's way
    assert contended.ok is False and contended.measured.startswith("1.60x")
    assert "0.86x" in contended.measured  # the raw saturated ratio is reported too


def test_scaling_never_claims_more_than_two_cores():
    assert scaling_verdict(70_000, 90_000).measured.startswith("2.00x")


def test_scaling_not_measured_without_paced_rows():
    (verdict,) = [v for v in verdicts(CASES, PEER_RECS, []) if "workers" in v.target]
    assert verdict.ok is None and verdict.measured == "not measured"


def tail_case(peer, wl, qps, p99, p999, worst, rnd=1):
    row = case(peer, wl, qps, p99=p99, rnd=rnd)
    row.update(p999_s=p999, max_s=worst)
    return row


def test_the_miss_path_targets_of_issue_13():
    cases = [
        tail_case("lachan", "mixed", 80_000, 0.003, 0.006, 0.020),
        tail_case("unbound", "mixed", 96_000, 0.003, 0.004, 0.007),
        tail_case("pdns-recursor", "mixed", 56_000, 0.009, 0.012, 0.015),
        tail_case("lachan", "miss", 21_000, 0.009, 0.012, 0.030),
        tail_case("lachan", "miss", 23_000, 0.008, 0.009, 0.060, rnd=2),  # one round's max
        tail_case("unbound", "miss", 37_000, 0.004, 0.005, 0.008),
        tail_case("lachan", "hit", 250_000, 0.001, 0.002, 0.010),
        {**case("lachan", "miss-paced", 5_000, p99=0.0008), "paced_qps": 5_000},
    ]
    v = by_target(verdicts(cases, PEER_RECS))
    assert v["mixed QPS >= 0.8x unbound"].ok is True  # 80k >= 76.8k
    assert v["mixed QPS >= 1.3x pdns-recursor"].ok is True  # 80k >= 72.8k
    assert v["miss QPS >= 0.6x unbound"].ok is False  # 22k < 22.2k
    assert v["miss p99 <= 2x unbound's miss p99 (same run, full load)"].ok is False  # 8.5 > 8
    assert v["miss-paced p99 <= 1 ms (paced at 5,000 QPS)"].ok is True
    assert v["miss p99.9 <= 10 ms (worst round)"].measured == "12.00 ms"
    assert v["miss p99.9 <= 10 ms (worst round)"].ok is False
    assert v["miss max <= 50 ms (worst round)"].ok is False  # round 2's 60 ms
    assert v["mixed max <= 50 ms (worst round)"].ok is True
    assert v["hit p99.9 <= 10 ms (worst round)"].ok is True
    assert v["blocked max <= 50 ms (worst round)"].ok is None  # not measured


def test_cpu_per_query_table_splits_user_and_kernel():
    cases = [
        dict(case("lachan", "miss", 25_000), peer_user_us=17.0, peer_kernel_us=21.0),
        dict(case("lachan", "miss", 25_000, rnd=2), peer_user_us=19.0, peer_kernel_us=21.0),
        dict(case("unbound", "miss", 38_000), peer_user_us=6.3, peer_kernel_us=20.0),
        case("dnsmasq", "miss", 20_000),  # an old result without the split
    ]
    res = {
        "started_utc": "2026-12-06T12:00:00+00:00",
        "setup": ["Machine: test"],
        "settings": {"workloads": ["miss"]},
        "inputs": {"workloads": {"miss": "unique names"}},
        "peers": PEER_RECS + [{"peer": "unbound", "round": 1}, {"peer": "dnsmasq", "round": 1}],
        "cases": cases,
        "scaling": [],
        "verdicts": [],
    }
    md = markdown(res)
    assert "| lachan | 18.0 + 21.0 = 39.0 |" in md  # the mean of the two rounds
    assert "| unbound | 6.3 + 20.0 = 26.3 |" in md
    assert "| dnsmasq | — |" in md
    assert "| 17.00 | 21.00 |" in md  # and per round in the detail table
