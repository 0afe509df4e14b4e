"""Many cores: the supervisor's own part, N worker processes sharing the listen ports.

Everything else a supervisor or a worker runs is wired by resolver.compose, the one
composition root, like a single process. What is left here is what exists only because there
are several processes: forking the workers (spawned: they share nothing but a pipe), restarting
one that dies (with back-off), summing their counters for the host's one /metrics endpoint and
audit ledger, handing their query-log records to the one writer, forwarding SIGHUP once a
reload is validated, and draining them on stop. Workers report a counters snapshot every
second over the pipe (``report``); that doubles as their heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from .stats import Snapshot, Stats, WorkerTotals

if TYPE_CHECKING:
    from .querylog import QueryLog

log = logging.getLogger(__name__)

REPORT_INTERVAL = 1.0
_BACKOFF_FIRST, _BACKOFF_MAX, _STABLE_AFTER = 0.5, 30.0, 60.0


# -- the worker's end of the pipe -----------------------------------------------------------
def report(
    conn: multiprocessing.connection.Connection, stats: Stats, querylog: QueryLog | None
) -> None:
    """Send the counters and, with the query log on, the records queued since last time.

    A worker queues query-log records like a single process does but ships them here: one
    writer keeps rotation, retention and the day's hashing key consistent, where several
    appending processes would each rotate.

    Nothing once the last report has closed the pipe: the periodic job may still fire while
    the worker stops (it logged "handle is closed" as a failed job).
    """
    if conn.closed:
        return
    conn.send(("stats", stats.snapshot()))
    if querylog is not None:
        records = querylog.take()
        if records:
            conn.send(("querylog", records))


def announce_ready(conn: multiprocessing.connection.Connection) -> None:
    """The worker is listening: the supervisor tells systemd once all of them are."""
    conn.send(("ready", os.getpid()))


# -- the supervisor's end -------------------------------------------------------------------
@dataclass
class _Worker:
    slot: int
    process: BaseProcess
    conn: multiprocessing.connection.Connection
    started: float
    ready: bool = False
    last_report: float = 0.0


@dataclass
class WorkerPool:
    """The supervisor's workers: started, restarted, summed, signalled and drained here.

    ``target(load, slot, conn)`` is a worker's entry point (resolver.compose.worker_main,
    passed in so this module does not import the composition root that imports it).
    """

    load: Callable[[], Any]
    count: int
    target: Callable[..., None]
    stats: Stats  # the supervisor's own counters (worker restarts)
    stopping: asyncio.Event
    on_all_ready: Callable[[], None]
    totals: WorkerTotals = field(default_factory=WorkerTotals)
    workers: dict[int, _Worker] = field(default_factory=dict)
    querylog: QueryLog | None = None  # the one writer of the workers' query-log records
    _backoff: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        for slot in range(self.count):
            self._start(slot)

    def snapshot(self, own: Snapshot) -> Snapshot:
        """The host's counters: every worker's (live and retired) plus the supervisor's."""
        return self.totals.total(own)

    def ready_count(self) -> int:
        return sum(1 for w in self.workers.values() if w.ready)

    def fresh(self) -> bool:
        """Every ready worker reported recently (the systemd watchdog pings only then)."""
        since = time.monotonic() - 5 * REPORT_INTERVAL
        return all(w.last_report >= since for w in self.workers.values() if w.ready)

    def signal(self, signum: int) -> None:
        for worker in self.workers.values():
            if worker.process.pid is not None:
                os.kill(worker.process.pid, signum)

    def _start(self, slot: int) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        process = context.Process(
            target=self.target,
            args=(self.load, slot, child),
            name=f"lachan-worker-{slot}",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(slot, process, parent, time.monotonic())
        self.workers[slot] = worker
        loop = asyncio.get_running_loop()
        loop.add_reader(parent.fileno(), self._on_message, worker)

    def _on_message(self, worker: _Worker) -> None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            self._on_exit(worker)
            return
        worker.last_report = time.monotonic()
        if kind == "stats":
            self.totals.update(worker.slot, payload)
        elif kind == "querylog" and self.querylog is not None:
            self.querylog.extend(payload)
        elif kind == "ready":
            worker.ready = True
            if all(w.ready for w in self.workers.values()) and len(self.workers) == self.count:
                self.on_all_ready()
                log.info("all %d workers ready", self.count)

    def _on_exit(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.conn.fileno())
        worker.conn.close()
        worker.process.join(timeout=1)
        self.totals.retire(worker.slot)
        self.workers.pop(worker.slot, None)
        if self.stopping.is_set():
            return
        self.stats.worker_restarts += 1
        lived = time.monotonic() - worker.started
        delay = (
            _BACKOFF_FIRST
            if lived > _STABLE_AFTER
            else min(_BACKOFF_MAX, 2 * self._backoff.get(worker.slot, _BACKOFF_FIRST / 2))
        )
        self._backoff[worker.slot] = delay
        log.error(
            "worker %d exited (code %s); restarting in %.1f s",
            worker.slot,
            worker.process.exitcode,
            delay,
        )
        loop.call_later(delay, self._restart, worker.slot)

    def _restart(self, slot: int) -> None:
        if not self.stopping.is_set() and slot not in self.workers:
            self._start(slot)

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every worker, wait up to ``grace``, kill the rest, read what they sent last."""
        for worker in self.workers.values():
            if worker.process.pid is not None and worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while (
            any(w.process.is_alive() for w in self.workers.values()) and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
        for worker in list(self.workers.values()):
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(timeout=1)
            self._drain(worker)

    def _drain(self, worker: _Worker) -> None:
        """Read what a stopped worker sent last (its final counters and query-log records)."""
        try:
            while worker.conn.poll():
                self._on_message(worker)
        except (EOFError, OSError):
            pass
