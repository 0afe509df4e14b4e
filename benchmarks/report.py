"""Turn the raw results into averages, target verdicts and a markdown report."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean

MIB = 1024
WORKLOADS = ("hit", "blocked", "mixed", "miss")
NOISY = 50.0  # % of a core used by other jobs during a case: mark its QPS as disturbed


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    ok: bool | None  # None: a figure was missing, so the target could not be checked

    def line(self) -> str:
        word = {True: "PASS", False: "FAIL", None: "N/A "}[self.ok]
        return f"{word}  {self.target}: {self.measured}"


CPU_KEYS = ("peer_user_us", "peer_kernel_us")


def averages(cases: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """Mean over rounds of qps, avg and p99 latency and CPU per query, per (peer, workload)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cases:
        if not c.get("error") and c.get("qps"):
            groups.setdefault((c["peer"], c["workload"]), []).append(c)
    out = {}
    for key, rows in groups.items():
        out[key] = {
            k: mean(r[k] for r in rows)
            for k in ("qps", "avg_s", "p99_s", "qps_per_peer_cpu_s", *CPU_KEYS)
            if all(k in r for r in rows)
        }
    return out


def _ratio_check(
    avg, name: str, wl: str, peer: str, factor: float, wl_peer: str | None = None
) -> Verdict:
    """Judged on raw QPS, as the targets are stated; the per-CPU-second ratio is shown beside
    it because on a shared 2-core machine it is the steadier of the two."""
    a, b = avg.get(("lachan", wl), {}), avg.get((peer, wl_peer or wl), {})
    mine, theirs = a.get("qps"), b.get("qps")
    if not mine or not theirs:
        return Verdict(name, "not measured", None)
    text = f"{mine:,.0f} vs {theirs:,.0f} QPS = {mine / theirs:.2f}x"
    if a.get("qps_per_peer_cpu_s") and b.get("qps_per_peer_cpu_s"):
        text += f" (per CPU-second: {a['qps_per_peer_cpu_s'] / b['qps_per_peer_cpu_s']:.2f}x)"
    return Verdict(name, text, mine >= factor * theirs)


def _memory_checks(peers: list[dict]) -> list[Verdict]:
    rec = next(
        (r for r in peers if r["peer"] == "lachan" and r["round"] == 1 and "rss_kib" in r), None
    )
    if rec is None or rec.get("rss_empty_kib") is None or not rec.get("list_loaded"):
        missing = (
            "not measured"
            if rec is None or rec.get("list_loaded")
            else "lachan ran without the list"
        )
        return [
            Verdict("added RSS for the list <= 4 MiB", missing, None),
            Verdict("ready <= 0.2 s", missing, None),
        ]
    rss = mean(r["rss_kib"] for r in peers if r["peer"] == "lachan" and "rss_kib" in r)
    added = (rss - rec["rss_empty_kib"]) / MIB
    index = rec.get("index_file_kib")
    ready = mean(r["ready_s"] for r in peers if r["peer"] == "lachan" and "ready_s" in r)
    note = (
        f"{ready:.3f} s spawn-to-blocking, mean of rounds (empty list: {rec['ready_empty_s']} s; "
        f"first start, building its index: {rec.get('ready_first_s')} s)"
    )
    return [
        Verdict(
            "added RSS for the list <= 4 MiB",
            f"{added:.1f} MiB 1 s after ready (index file {_f(index, 1 / MIB, 1)} MiB, mapped)",
            added <= 4.0,
        ),
        Verdict("ready <= 0.2 s", note, ready <= 0.2),
    ]


def _p99_check(avg, cases: list[dict], wl: str) -> Verdict:
    rate = next((c.get("paced_qps") for c in cases if c["workload"] == wl), None)
    how = f"paced at {rate:,} QPS" if rate else "saturating closed loop, 1,000 outstanding"
    p99 = avg.get(("lachan", wl), {}).get("p99_s")
    if p99 is None:
        return Verdict(f"{wl} p99 <= 2 ms ({how})", "not measured", None)
    return Verdict(f"{wl} p99 <= 2 ms ({how})", f"{1000 * p99:.2f} ms", p99 <= 0.002)


def _worst(cases: list[dict], wl: str, key: str) -> float | None:
    """lachan's worst round for a tail figure: a tail target holds in every round or not."""
    values = [c[key] for c in cases if c["peer"] == "lachan" and c["workload"] == wl and key in c]
    return max(values) if values else None


def _tail_checks(cases: list[dict]) -> list[Verdict]:
    """Issue 13: p99.9 <= 10 ms and max <= 50 ms on hit, blocked, mixed and miss."""
    out = []
    for wl in WORKLOADS:
        for key, label, bound in (("p999_s", "p99.9", 0.010), ("max_s", "max", 0.050)):
            worst = _worst(cases, wl, key)
            name = f"{wl} {label} <= {bound * 1000:.0f} ms (worst round)"
            if worst is None:
                out.append(Verdict(name, "not measured", None))
            else:
                out.append(Verdict(name, f"{worst * 1000:.2f} ms", worst <= bound))
    return out


def _miss_p99_against_unbound(avg) -> Verdict:
    name = "miss p99 <= 2x unbound's miss p99 (same run, full load)"
    mine = avg.get(("lachan", "miss"), {}).get("p99_s")
    theirs = avg.get(("unbound", "miss"), {}).get("p99_s")
    if not mine or not theirs:
        return Verdict(name, "not measured", None)
    text = f"{mine * 1000:.2f} vs {theirs * 1000:.2f} ms = {mine / theirs:.2f}x"
    return Verdict(name, text, mine <= 2 * theirs)


def _paced_p99(avg, cases: list[dict], wl: str, bound: float) -> Verdict:
    rate = next((c.get("paced_qps") for c in cases if c["workload"] == wl), None)
    name = f"{wl} p99 <= {bound * 1000:g} ms (paced at {rate:,} QPS)" if rate else f"{wl} p99"
    p99 = avg.get(("lachan", wl), {}).get("p99_s")
    if p99 is None:
        return Verdict(name, "not measured", None)
    return Verdict(name, f"{1000 * p99:.2f} ms", p99 <= bound)


def miss_path_verdicts(cases: list[dict], avg) -> list[Verdict]:
    """Issue 13's targets: the miss path and the tail, against peers in the same run."""
    return [
        _ratio_check(avg, "mixed QPS >= 0.8x unbound", "mixed", "unbound", 0.8),
        _ratio_check(avg, "mixed QPS >= 1.3x pdns-recursor", "mixed", "pdns-recursor", 1.3),
        _ratio_check(avg, "miss QPS >= 0.6x unbound", "miss", "unbound", 0.6),
        _miss_p99_against_unbound(avg),
        _paced_p99(avg, cases, "miss-paced", 0.001),
    ] + _tail_checks(cases)


def verdicts(cases: list[dict], peers: list[dict], scaling: list[dict] = ()) -> list[Verdict]:  # type: ignore[assignment]
    """The targets of issues 2, 3, 4, 6 and 13, each PASS / FAIL / N/A."""
    loaded = all(r.get("list_loaded") for r in peers if r["peer"] == "lachan")
    # Without its list lachan forwards listed names: blocked figures would compare nothing.
    avg = averages(
        [c for c in cases if loaded or c["peer"] != "lachan" or c["workload"] in ("hit", "miss")]
    )
    out = [
        _ratio_check(avg, "cache-hit QPS >= 40% of dnsmasq", "hit", "dnsmasq", 0.4),
        _ratio_check(avg, "cache-miss QPS >= 50% of unbound", "miss", "unbound", 0.5),
        _ratio_check(avg, "cache-hit QPS >= 20x naive dnslib", "hit", "baseline-dnslib", 20),
        _ratio_check(avg, "cache-miss QPS >= 20x naive dnslib", "miss", "baseline-dnslib", 20),
    ]
    for wl in ("hit", "miss", "hit-paced", "miss-paced"):
        out.append(_p99_check(avg, cases, wl))
    out += [
        _ratio_check(avg, "blocked QPS >= 1.5x pdns-recursor", "blocked", "pdns-recursor", 1.5),
        _ratio_check(avg, "blocked QPS >= 10x dnsmasq", "blocked", "dnsmasq", 10),
        _ratio_check(
            avg, "lachan blocked QPS >= lachan cache-hit", "blocked", "lachan", 1.0, "hit"
        ),
    ]
    out += [_policy_cost(avg)] + _memory_checks(peers) + [_scaling_check(scaling)]
    return out + miss_path_verdicts(cases, avg)


def _scaling_check(scaling: list[dict]) -> Verdict:
    """Issue 6: 2 workers >= 1.7x 1 worker on cache hits, accounting for the load generator.

    On a 2-core machine dnsperf and NSD need most of a core, and dnsperf on its core cannot
    send much more than one worker serves, so raw QPS cannot show two workers' scaling (the
    raw ratio is printed anyway). Nor can CPU per query of saturated runs: one worker then
    gets twice the load of each of two, and per-query cost falls with load (bigger batches
    per wake-up). So each count also runs paced at the same load *per worker*; workers that
    do not contend spend the same CPU per query there, and N of them on N dedicated cores
    serve N x one's load. Check: 2 x min(1, CPU per query, 1 worker / 2 workers) >= 1.7.
    The ratio is capped at 1: above it, two workers spend *less* CPU per query than one (an
    uneven SO_REUSEPORT split, say, gives one worker bigger batches), which shows no contention but
    cannot promise more than 2x on two cores.
    """
    name = (
        "2 workers >= 1.7x 1 worker (cache-hit; 2 x CPU per query, 1 vs 2, equal load per worker)"
    )
    rows = {
        (wl, n): [
            c
            for c in scaling
            if (c.get("workload"), c.get("workers")) == (wl, n) and c.get("qps_per_peer_cpu_s")
        ]  # fmt: skip
        for wl in ("hit", "hit-paced")
        for n in (1, 2)
    }
    if not all(rows.values()):
        return Verdict(name, "not measured", None)

    def avg(wl: str, n: int, key: str) -> float:
        return mean(c[key] for c in rows[(wl, n)])

    per_cpu = avg("hit-paced", 2, "qps_per_peer_cpu_s") / avg("hit-paced", 1, "qps_per_peer_cpu_s")
    accounted = 2 * min(1.0, per_cpu)
    raw = avg("hit", 2, "qps") / avg("hit", 1, "qps")
    text = (
        f"{accounted:.2f}x: paced at {avg('hit-paced', 1, 'qps'):,.0f} and "
        f"{avg('hit-paced', 2, 'qps'):,.0f} QPS, queries per lachan CPU-second "
        f"{avg('hit-paced', 1, 'qps_per_peer_cpu_s'):,.0f} vs "
        f"{avg('hit-paced', 2, 'qps_per_peer_cpu_s'):,.0f} ({per_cpu:.2f}x); saturated raw "
        f"{avg('hit', 2, 'qps'):,.0f} vs {avg('hit', 1, 'qps'):,.0f} QPS = {raw:.2f}x, with dnsperf "
        f"on {avg('hit', 2, 'dnsperf_cpu_pct'):.0f}% of its core"
    )
    return Verdict(name, text, accounted >= 1.7)


def _policy_cost(avg) -> Verdict:
    """Issue 4: the under16 profile may cost at most 25% of plain lachan's cache-hit QPS."""
    full, plain = avg.get(("lachan-under16", "hit"), {}), avg.get(("lachan", "hit"), {})
    name = "under16 policy costs <= 25% of cache-hit QPS"
    if not full.get("qps") or not plain.get("qps"):
        return Verdict(name, "not measured", None)
    ratio = full["qps"] / plain["qps"]
    text = f"{full['qps']:,.0f} vs {plain['qps']:,.0f} QPS = {ratio:.2f}x"
    if full.get("qps_per_peer_cpu_s") and plain.get("qps_per_peer_cpu_s"):
        text += (
            f" (per CPU-second: {full['qps_per_peer_cpu_s'] / plain['qps_per_peer_cpu_s']:.2f}x)"
        )
    return Verdict(name, text, ratio >= 0.75)


def _f(v, scale: float = 1.0, digits: int = 0) -> str:
    return "—" if v is None else f"{v * scale:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def startup_table(peers: list[dict], names: list[str]) -> list[str]:
    rows = []
    for n in names:
        recs = [r for r in peers if r["peer"] == n]
        first = next((r for r in recs if r["round"] == 1), {})
        ok = [r for r in recs if "rss_kib" in r]
        rss = mean(r["rss_kib"] for r in ok) if ok else None
        empty = first.get("rss_empty_kib")
        sem = first.get("semantics") or {}
        rows.append(
            [
                n,
                " / ".join(_f(r.get("ready_s"), 1, 3) for r in recs),
                _f(first.get("ready_empty_s"), 1, 3),
                _f(first.get("ready_first_s"), 1, 3),
                _f(rss, 1 / MIB, 1),
                _f(empty, 1 / MIB, 1),
                _f(None if rss is None or empty is None else rss - empty, 1 / MIB, 1),
                " / ".join(_f(r.get("rss_end_kib"), 1 / MIB, 1) for r in recs),
                f"{sem.get('exact', '—')} / {sem.get('subdomain', '—')} / {sem.get('aaaa', '—')}",
                sem.get("blocked_answer", first.get("error", "—")[:60]),
            ]
        )
    hdr = [
        "peer",
        "ready s (per round)",
        "ready s, empty list",
        "first start s (builds its index)",
        "RSS MiB",
        "RSS MiB, empty list",
        "added RSS MiB",
        "RSS MiB at end",
        "blocks exact / subdomain / AAAA",
        "blocked answer",
    ]
    return _table(hdr, rows)


def summary_table(cases: list[dict], names: list[str], wls: list[str]) -> list[str]:
    avg, rows = averages(cases), []
    for n in names:
        cells = [n]
        for wl in wls:
            q, mine = avg.get((n, wl), {}).get("qps"), avg.get(("lachan", wl), {}).get("qps")
            ratio = f" (lachan {mine / q:.2f}x)" if q and mine and n != "lachan" else ""
            cells.append(_f(q) + ratio)
        rows.append(cells)
    return _table(["peer"] + [f"{wl} QPS" for wl in wls], rows)


def cpu_table(cases: list[dict], names: list[str], wls: list[str]) -> list[str]:
    """Per peer and workload, the peer's CPU per answered query: its own code + the kernel's."""
    avg, rows = averages(cases), []
    for n in names:
        cells = [n]
        for wl in wls:
            a = avg.get((n, wl), {})
            user, kernel = a.get("peer_user_us"), a.get("peer_kernel_us")
            known = user is not None and kernel is not None
            cells.append(f"{user:.1f} + {kernel:.1f} = {user + kernel:.1f}" if known else "—")
        rows.append(cells)
    return _table(["peer"] + [f"{wl} µs/query" for wl in wls], rows)


DETAIL_HEADER = ["peer", "round", "workers", "QPS", "QPS per peer CPU-second", "avg ms", "p50",
                 "p99", "p99.9", "max", "lost", "rcodes", "peer CPU %", "user µs/q",
                 "kernel µs/q", "dnsperf CPU %", "NSD CPU %", "others CPU %"]  # fmt: skip


def _detail_row(c: dict) -> list[str]:
    if c.get("error"):
        return [c["peer"], str(c.get("round", 1)), "", "error: " + c["error"][:80]] + [""] * 14
    codes = sorted(c.get("rcodes", {}).items(), key=lambda kv: -kv[1])
    noisy = " ‡" if (c.get("others_cpu_pct") or 0) > NOISY else ""
    ms = [_f(c.get(k), 1000, 2) for k in ("avg_s", "p50_s", "p99_s", "p999_s", "max_s")]
    cpu = [_f(c.get(f"{k}_cpu_pct"), 1, 1) for k in ("peer", "dnsperf", "upstream", "others")]
    cpu[1:1] = [_f(c.get(k), 1, 2) for k in CPU_KEYS]
    head = [c["peer"], str(c["round"]), str(c.get("workers", 1)), _f(c.get("qps")) + noisy]
    tail = [_f(c.get("lost")), ", ".join(f"{k} {v}" for k, v in codes)]
    return head + [_f(c.get("qps_per_peer_cpu_s"))] + ms + tail + cpu


def detail_table(cases: list[dict], wl: str) -> list[str]:
    return _table(DETAIL_HEADER, [_detail_row(c) for c in cases if c["workload"] == wl])


def markdown(res: dict) -> str:
    """The whole report: setup, startup/memory, QPS summary, details, scaling, targets."""
    names = list(dict.fromkeys(r["peer"] for r in res["peers"]))
    wls = [w for w in WORKLOADS if w in res["settings"]["workloads"]]
    L = [f"# lachan side-by-side benchmark — {res['started_utc'][:16].replace('T', ' ')} UTC", ""]
    L += [f"- {line}" for line in res["setup"]] + [""]
    L += [
        "## Startup and memory",
        "",
        "*ready* = spawn until a random name resolves through the upstream "
        "and the last listed name is blocked. *added RSS* = RSS with the list − RSS with an empty list "
        "(1 s after ready, summed over the peer's processes).",
        "",
    ]
    L += startup_table(res["peers"], names) + [""]
    L += ["## QPS (mean of rounds; in brackets lachan's QPS as a multiple of that peer's)", ""]
    noisy = sum(1 for c in res["cases"] if (c.get("others_cpu_pct") or 0) > NOISY)
    if noisy:
        L += [f"**{noisy} of {len(res['cases'])} cases ran while other jobs used more than "
              f"{NOISY:.0f}% of a core** (marked ‡ below): compare rounds, and prefer *QPS per peer "
              "CPU-second*, which is less sensitive to that.", ""]  # fmt: skip
    L += summary_table(res["cases"], names, wls) + [""]
    if any(c.get("peer_user_us") is not None for c in res["cases"]):
        L += ["## CPU per answered query (µs, mean of rounds: the peer's own code + the kernel's work for it)",
              "", "From the peer's user and system clock ticks over each timed case. The kernel's "
              "share (receiving, sending, and on loopback delivering each answer into dnsperf's "
              "socket; on a miss also the upstream socket's life) is much the same work for every "
              "peer; the user share is what each implementation spends.", ""]  # fmt: skip
        L += cpu_table(res["cases"], names, wls) + [""]
    paced = [
        w for w in ("hit-paced", "miss-paced") if any(c["workload"] == w for c in res["cases"])
    ]
    for wl in wls + paced:
        L += (
            [f"### {wl}", "", res["inputs"]["workloads"].get(wl, ""), ""]
            + detail_table(res["cases"], wl)
            + [""]
        )
    if res.get("scaling"):
        L += (
            [
                "## lachan workers (cache-hit, unpinned; dnsperf and NSD stay on CPU 0)",
                "",
                res["scaling_note"],
                "",
            ]
            + detail_table(res["scaling"], "hit")
            + [""]
            + detail_table(res["scaling"], "hit-paced")
            + [""]
        )
    L += ["## Targets", "", "```"] + [Verdict(**v).line() for v in res["verdicts"]] + ["```", ""]
    return "\n".join(L)
