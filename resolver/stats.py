"""In-process query statistics: plain integer counters the hot path bumps, snapshots that merge.

The DNS hot path has a budget of a few microseconds per query, so nothing here calls
prometheus_client: a query costs one list-slot increment and one dict increment. The metrics
module turns a *snapshot* (a plain JSON-able dict) into Prometheus families at scrape time.

Threading: exactly one thread (the worker's event loop) writes a ``Stats``; ``snapshot()`` may
run on another thread (the /metrics server) because it only copies (``dict.copy()`` and list
slices are single C calls under the GIL) and never iterates a live dict.

Privacy: label values are bounded. Fixed vocabularies (transport, qtype class, action, engine,
bypass kind, failure reason) are tuples below; operator vocabularies (categories, profiles,
upstreams, list sources) come from config as ``LabelSets``. ``snapshot()`` folds any value outside
them into ``"other"``, so a caller that passed a client address or a queried name by mistake can
never leak it into a metric.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

TRANSPORTS = ("udp", "tcp", "dot", "doh")
UDP, TCP = 0, 1
DOT, DOH = 2, 3  # DNS over TLS and HTTPS (resolver/transport/dot.py, doh.py)

# Query types grouped into a bounded "qtype" label; the ones a filter cares about get their own.
QTYPE_CLASSES: tuple[str, ...] = ("a", "aaaa", "https", "svcb", "cname", "mx", "txt", "ptr")
QTYPE_CLASSES += ("srv", "ns", "soa", "any", "other")
_QTYPE_CODES = {1: "a", 28: "aaaa", 65: "https", 64: "svcb", 5: "cname", 15: "mx", 16: "txt"}
_QTYPE_CODES |= {12: "ptr", 33: "srv", 2: "ns", 6: "soa", 255: "any"}
QTYPE_INDEX: dict[int, int] = {code: QTYPE_CLASSES.index(n) for code, n in _QTYPE_CODES.items()}
QTYPE_OTHER = QTYPE_CLASSES.index("other")

ACTIONS: tuple[str, ...] = ("allowed", "blocked", "rewritten", "refused", "servfail", "formerr")
ACTIONS += ("dropped", "ratelimited", "monitored")
ACTIONS += ("stale",)  # served stale (RFC 8767) when every upstream failed
ENGINES = ("google", "youtube", "bing", "duckduckgo", "yandex", "ecosia", "pixabay", "brave")
BYPASS_KINDS = ("canary", "private_relay", "doh", "vpn", "proxy", "tor")
UPSTREAM_FAILURE_REASONS = ("timeout", "network", "servfail", "refused", "malformed")
TCP_REFUSAL_REASONS = ("acl", "per_client", "total", "buffer")  # see transport/tcp_limits.py
CONSOLE_LISTENERS = ("console", "blockpage")
CONSOLE_REFUSAL_REASONS = ("per_address", "total", "slow")  # console/connections.py; all from 0
OTHER = "other"
NONE = "none"  # the category of an answer that no list decided

# Upper bounds (seconds) of the latency histograms: a cache hit or a block answers in tens of
# microseconds, an upstream exchange in milliseconds, a timeout in seconds.
DURATION_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
)
DURATION_BUCKETS += (0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_NBUCKETS = len(DURATION_BUCKETS) + 1  # the last slot is +Inf

COUNTER, GAUGE, MAX, HISTOGRAM = "counter", "gauge", "max", "histogram"


@dataclass(frozen=True, slots=True)
class Family:
    """How one snapshot family is labelled and how worker snapshots combine.

    ``counter`` and ``histogram`` sum and survive a worker's death; ``gauge`` sums over live
    workers only; ``max`` keeps the largest (timestamps, sizes of the shared index).
    """

    labels: tuple[str, ...]
    kind: str


FAMILIES: dict[str, Family] = {
    "queries": Family(("transport", "qtype"), COUNTER),
    "answers": Family(("action", "category", "profile"), COUNTER),
    "safesearch_rewrites": Family(("engine",), COUNTER),
    "bypass_attempts": Family(("kind",), COUNTER),
    "request_duration": Family(("transport",), HISTOGRAM),
    "cache_hits": Family((), COUNTER),
    "cache_misses": Family((), COUNTER),
    "cache_evictions": Family((), COUNTER),
    "prefetches": Family((), COUNTER),
    "cache_entries": Family((), GAUGE),
    "upstream_queries": Family(("upstream",), COUNTER),
    "upstream_failures": Family(("upstream", "reason"), COUNTER),
    "upstream_duration": Family(("upstream",), HISTOGRAM),
    "index_entries": Family(("category", "source"), MAX),
    "list_last_success": Family(("source",), MAX),
    "list_refresh_failures": Family(("source",), COUNTER),
    "config_reloads": Family((), COUNTER),
    "config_reload_failures": Family((), COUNTER),
    "config_last_reload_success": Family((), MAX),
    "index_built": Family((), MAX),
    "worker_restarts": Family((), COUNTER),
    "workers": Family((), GAUGE),
    "tcp_refused": Family(("reason",), COUNTER),
    "console_refused": Family(("listener", "reason"), COUNTER),
    "upstream_mismatched": Family(("upstream",), COUNTER),
    "cache_bytes": Family((), GAUGE),
    "tls_certificate_expiry": Family((), MAX),
}

Snapshot = dict[str, list[list[Any]]]
"""family name -> rows ``[label values, value]``; a histogram value is ``[bucket counts, sum]``."""


@dataclass(frozen=True, slots=True)
class LabelSets:
    """The operator's bounded vocabularies, from config; swapped whole on reload."""

    categories: frozenset[str] = frozenset()
    profiles: frozenset[str] = frozenset()
    upstreams: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()

    def allowed(self, label: str) -> frozenset[str]:
        """Every value ``label`` may take; anything else is reported as ``other``."""
        return _allowed(self, label)


_FIXED: dict[str, frozenset[str]] = {
    "transport": frozenset(TRANSPORTS),
    "qtype": frozenset(QTYPE_CLASSES),
    "action": frozenset(ACTIONS),
    "engine": frozenset(ENGINES),
    "kind": frozenset(BYPASS_KINDS),
    "reason": frozenset(UPSTREAM_FAILURE_REASONS + TCP_REFUSAL_REASONS + CONSOLE_REFUSAL_REASONS),
    "listener": frozenset(CONSOLE_LISTENERS),
}


def _allowed(sets: LabelSets, label: str) -> frozenset[str]:
    if label in _FIXED:
        return _FIXED[label]
    if label == "category":
        return sets.categories | {NONE}
    by_config = {"profile": sets.profiles, "upstream": sets.upstreams, "source": sets.sources}
    return by_config[label]


def qtype_class(qtype: int) -> int:
    """Index into ``QTYPE_CLASSES`` for a numeric query type."""
    return QTYPE_INDEX.get(qtype, QTYPE_OTHER)


def bucket_index(seconds: float) -> int:
    """Histogram slot for ``seconds``: Prometheus buckets are ``<= le``, hence bisect_left."""
    return bisect.bisect_left(DURATION_BUCKETS, seconds)


class Stats:
    """One process's counters. The hot path calls ``record_query`` and ``record_answer``."""

    __slots__ = (
        "labels",
        "queries",
        "answers",
        "durations",
        "duration_sums",
        "safesearch_rewrites",
        "bypass_attempts",
        "cache_hits",
        "cache_misses",
        "cache_evictions",
        "prefetches",
        "cache_size",
        "upstream_queries",
        "upstream_failures",
        "upstream_durations",
        "upstream_duration_sums",
        "index_entries",
        "list_last_success",
        "list_refresh_failures",
        "config_reloads",
        "config_reload_failures",
        "config_last_reload_success",
        "index_built",
        "worker_restarts",
        "workers",
        "tcp_refused",
        "console_refused",
        "upstream_mismatched",
        "cache_bytes",
        "tls_certificate_expiry",
    )

    def __init__(self, labels: LabelSets | None = None) -> None:
        self.labels = labels or LabelSets()
        self.queries = [[0] * len(QTYPE_CLASSES) for _ in TRANSPORTS]
        self.answers: dict[tuple[str, str, str], int] = {}
        self.durations = [[0] * _NBUCKETS for _ in TRANSPORTS]
        self.duration_sums = [0.0 for _ in TRANSPORTS]
        self.safesearch_rewrites: dict[str, int] = {}
        self.bypass_attempts: dict[str, int] = {}
        self.cache_hits = self.cache_misses = self.cache_evictions = 0
        self.prefetches = 0  # background refreshes of entries near expiry (cache.prefetch)
        self.cache_size: Callable[[], int] | None = None  # set by the cache's owner
        self.upstream_queries: dict[str, int] = {}
        self.upstream_failures: dict[tuple[str, str], int] = {}
        self.upstream_durations: dict[str, list[int]] = {}
        self.upstream_duration_sums: dict[str, float] = {}
        self.index_entries: dict[tuple[str, str], int] = {}
        self.list_last_success: dict[str, float] = {}
        self.list_refresh_failures: dict[str, int] = {}
        self.config_reloads = self.config_reload_failures = self.worker_restarts = 0
        self.config_last_reload_success = 0.0
        self.index_built = 0.0  # when the blocklist index in force was compiled; 0 = none
        self.workers = 0  # live worker processes; only the supervisor sets it
        self.tcp_refused: dict[str, int] = {}  # reason -> TCP connections closed by a limit
        self.console_refused = dict.fromkeys(product(CONSOLE_LISTENERS, CONSOLE_REFUSAL_REASONS), 0)
        self.upstream_mismatched: dict[str, int] = {}  # replies failing ID/question checks
        self.cache_bytes: Callable[[], int] | None = None  # set by the cache's owner
        self.tls_certificate_expiry = 0.0  # Unix time the DoT/DoH certificate expires; 0 = none

    # -- hot path: a slot increment or one dict increment each ---------------------------------

    def record_query(self, transport: int, qtype: int) -> None:
        """Count one received query; ``transport`` is ``UDP`` or ``TCP``, ``qtype`` numeric."""
        self.queries[transport][QTYPE_INDEX.get(qtype, QTYPE_OTHER)] += 1

    def record_answer(
        self, transport: int, action: str, category: str, profile: str, seconds: float
    ) -> None:
        """Count one answer (``action`` from ``ACTIONS``) and its latency since receipt."""
        key = (action, category, profile)
        answers = self.answers
        answers[key] = answers.get(key, 0) + 1
        self.durations[transport][bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sums[transport] += seconds

    def record_rewrite(self, engine: str) -> None:
        """Count one safe-search rewrite for ``engine`` (one of ``ENGINES``)."""
        self.safesearch_rewrites[engine] = self.safesearch_rewrites.get(engine, 0) + 1

    def record_bypass(self, kind: str) -> None:
        """Count one anti-bypass hit of ``kind`` (one of ``BYPASS_KINDS``)."""
        self.bypass_attempts[kind] = self.bypass_attempts.get(kind, 0) + 1

    # -- upstream path (already async, so a few dict operations are noise) ---------------------

    def record_upstream(self, upstream: str, seconds: float) -> None:
        """Count one exchange with ``upstream`` ("address:port") and how long it took."""
        self.upstream_queries[upstream] = self.upstream_queries.get(upstream, 0) + 1
        slots = self.upstream_durations.get(upstream)
        if slots is None:
            slots = self.upstream_durations[upstream] = [0] * _NBUCKETS
        slots[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        sums = self.upstream_duration_sums
        sums[upstream] = sums.get(upstream, 0.0) + seconds

    def record_upstream_failure(self, upstream: str, reason: str) -> None:
        """Count one failed exchange; ``reason`` is one of ``UPSTREAM_FAILURE_REASONS``."""
        key = (upstream, reason)
        self.upstream_failures[key] = self.upstream_failures.get(key, 0) + 1

    # -- control plane: reloads, list refreshes, workers ---------------------------------------

    def record_reload(self, ok: bool, now: float) -> None:
        """Count one configuration reload attempt at wall-clock time ``now``."""
        self.config_reloads += 1
        if ok:
            self.config_last_reload_success = now
        else:
            self.config_reload_failures += 1

    def record_refresh(self, source: str, ok: bool, now: float) -> None:
        """Count one list-source refresh; success moves the source's freshness timestamp."""
        if ok:
            self.list_last_success[source] = now
        else:
            self.list_refresh_failures[source] = self.list_refresh_failures.get(source, 0) + 1

    def set_index_entries(self, entries: Mapping[tuple[str, str], int]) -> None:
        """Replace the entry counts of the loaded index, keyed by (category, source)."""
        self.index_entries = dict(entries)

    def snapshot(self) -> Snapshot:
        """A JSON-able copy of every counter, with out-of-vocabulary label values folded."""
        raw = _raw_rows(self)
        return {name: _fold(rows, FAMILIES[name], self.labels) for name, rows in raw.items()}


def _raw_rows(s: Stats) -> dict[str, list[list[Any]]]:
    def keyed(d: dict[Any, Any]) -> list[list[Any]]:
        return [[list(k) if isinstance(k, tuple) else [k], v] for k, v in d.copy().items()]

    sums = s.upstream_duration_sums.copy()
    return {
        "queries": [
            [[t, q], n]
            for t, row in zip(TRANSPORTS, s.queries, strict=True)
            for q, n in zip(QTYPE_CLASSES, row, strict=True)
        ],
        "answers": keyed(s.answers),
        "safesearch_rewrites": keyed(s.safesearch_rewrites),
        "bypass_attempts": keyed(s.bypass_attempts),
        "request_duration": [
            [[t], [s.durations[i][:], s.duration_sums[i]]] for i, t in enumerate(TRANSPORTS)
        ],
        "cache_hits": [[[], s.cache_hits]],
        "cache_misses": [[[], s.cache_misses]],
        "cache_evictions": [[[], s.cache_evictions]],
        "prefetches": [[[], s.prefetches]],
        "cache_entries": [[[], s.cache_size() if s.cache_size else 0]],
        "upstream_queries": keyed(s.upstream_queries),
        "upstream_failures": keyed(s.upstream_failures),
        "upstream_duration": [
            [[u], [c[:], sums.get(u, 0.0)]] for u, c in s.upstream_durations.copy().items()
        ],
        "index_entries": keyed(s.index_entries),
        "list_last_success": keyed(s.list_last_success),
        "list_refresh_failures": keyed(s.list_refresh_failures),
        "config_reloads": [[[], s.config_reloads]],
        "config_reload_failures": [[[], s.config_reload_failures]],
        "config_last_reload_success": [[[], s.config_last_reload_success]],
        "index_built": [[[], s.index_built]],
        "worker_restarts": [[[], s.worker_restarts]],
        "workers": [[[], s.workers]],
        "tcp_refused": keyed(s.tcp_refused),
        "console_refused": keyed(s.console_refused),
        "upstream_mismatched": keyed(s.upstream_mismatched),
        "cache_bytes": [[[], s.cache_bytes() if s.cache_bytes else 0]],
        "tls_certificate_expiry": [[[], s.tls_certificate_expiry]],
    }


def _fold(rows: list[list[Any]], family: Family, sets: LabelSets) -> list[list[Any]]:
    allowed = [sets.allowed(label) for label in family.labels]
    folded = [
        [[v if v in ok else OTHER for v, ok in zip(labels, allowed, strict=True)], value]
        for labels, value in rows
    ]
    return _combine([folded], family.kind)


def _combine(groups: Iterable[list[list[Any]]], kind: str) -> list[list[Any]]:
    out: dict[tuple[str, ...], Any] = {}
    for rows in groups:
        for labels, value in rows:
            key = tuple(labels)
            out[key] = value if key not in out else _add(out[key], value, kind)
    return [[list(k), v] for k, v in sorted(out.items())]


def _add(a: Any, b: Any, kind: str) -> Any:
    if kind == MAX:
        return max(a, b)
    if kind == HISTOGRAM:
        return [[x + y for x, y in zip(a[0], b[0], strict=True)], a[1] + b[1]]
    return a + b


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """Sum (or, for ``max`` families, take the largest of) several processes' snapshots."""
    snaps = list(snapshots)
    return {
        name: _combine((s.get(name, []) for s in snaps), family.kind)
        for name, family in FAMILIES.items()
    }


def carry_over(snapshot: Snapshot) -> Snapshot:
    """What of a dead worker's snapshot stays in the totals: everything but live gauges."""
    return {n: rows for n, rows in snapshot.items() if FAMILIES[n].kind != GAUGE}


class WorkerTotals:
    """The supervisor's running sum over workers, monotonic across worker restarts.

    A restarted worker starts from zero; without keeping what the dead one had counted, the
    summed counters would go down and Prometheus would read a counter reset (and ``rate()``
    would spike). ``retire`` folds the last snapshot of a dead worker into a base.
    """

    def __init__(self) -> None:
        self._retired: Snapshot = {}
        self._live: dict[int, Snapshot] = {}

    def update(self, worker: int, snapshot: Snapshot) -> None:
        """Remember the latest snapshot received from ``worker``."""
        self._live[worker] = snapshot

    def retire(self, worker: int) -> None:
        """``worker`` died: keep its counters, forget its gauges."""
        last = self._live.pop(worker, None)
        if last is not None:
            self._retired = merge([self._retired, carry_over(last)])

    def total(self, *extra: Snapshot) -> Snapshot:
        """The sum over retired and live workers plus ``extra`` (the supervisor's own)."""
        return merge([self._retired, *self._live.values(), *extra])
