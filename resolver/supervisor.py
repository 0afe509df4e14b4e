"""Many cores: N worker processes share the listen ports (SO_REUSEPORT); one supervisor.

The supervisor binds no DNS socket. It compiles the blocklist index once (workers only map
the file, so its pages are shared), starts the workers, restarts one that dies (with
back-off), sums their counters for the single /metrics endpoint and the audit ledger,
validates a reload before forwarding SIGHUP, and drains them on SIGTERM. Workers report a
counters snapshot every second over a pipe; that doubles as their heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from .app import (
    ConfigLoader,
    Server,
    _close_quietly,
    build_resolver,
    every,
    feed_index,
    label_sets,
    open_audit,
    open_console,
    settle_memory,
    start_metrics,
    warn_restart_needed,
)
from .config import Config
from .errors import LachanError
from .list_freshness import refresh_lists, watch_list_freshness
from .querystate import LoggedStats
from .reloadable import applied_config
from .sdnotify import Notifier, watchdog_interval
from .state import ServingState, build_state
from .stats import Snapshot, Stats, WorkerTotals

if TYPE_CHECKING:
    from .querylog import QueryLog

log = logging.getLogger(__name__)

_REPORT_INTERVAL = 1.0
_BACKOFF_FIRST, _BACKOFF_MAX, _STABLE_AFTER = 0.5, 30.0, 60.0


# -- the worker side ------------------------------------------------------------------------
def worker_main(
    load: ConfigLoader, worker_id: int, conn: multiprocessing.connection.Connection
) -> None:
    """Entry point of a worker process (spawned: it shares nothing but the pipe)."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s worker{worker_id} %(name)s: %(message)s",
    )
    try:
        import uvloop

        uvloop.run(_worker(load, conn))
    except ImportError:  # pragma: no cover
        asyncio.run(_worker(load, conn))


async def _worker(load: ConfigLoader, conn: multiprocessing.connection.Connection) -> None:
    config = load()
    loop = asyncio.get_running_loop()
    state = await loop.run_in_executor(None, build_state, config)
    # With the query log on, a worker queues records like a single process does, but ships
    # them to the supervisor with its counters: one writer keeps rotation, retention and the
    # day's hashing key consistent, where several appending processes would each rotate.
    stats = (LoggedStats if config.querylog else Stats)(label_sets(config, state))
    settle_memory()
    server = Server(config, build_resolver(config, state, stats), reuse_port=True)
    querylog = server.resolver.querylog
    await server.start()
    server.follow_allows()
    if config.subscribers is not None:  # each worker follows the store; RADIUS stays here
        from .subscribers.runtime import start_subscribers

        await start_subscribers(config, server.resolver, None, radius=False)
    loop.add_signal_handler(signal.SIGTERM, server.stopping.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the supervisor decides
    loop.add_signal_handler(
        signal.SIGHUP, lambda: loop.create_task(server.reload(load, record=False))
    )
    conn.send(("ready", os.getpid()))
    every(loop, _REPORT_INTERVAL, lambda: _report(conn, stats, querylog))
    try:
        await server.stopping.wait()
    finally:
        await server.stop()
        _report(conn, stats, querylog)
        conn.close()


def _report(
    conn: multiprocessing.connection.Connection, stats: Stats, querylog: QueryLog | None
) -> None:
    """Send the counters and, with the query log on, the records queued since last time."""
    conn.send(("stats", stats.snapshot()))
    if querylog is not None:
        records = querylog.take()
        if records:
            conn.send(("querylog", records))


# -- the supervisor side --------------------------------------------------------------------
@dataclass
class _Worker:
    slot: int
    process: BaseProcess
    conn: multiprocessing.connection.Connection
    started: float
    ready: bool = False
    last_report: float = 0.0


@dataclass
class Supervisor:
    config: Config
    load: ConfigLoader
    count: int
    notifier: Notifier = field(default_factory=lambda: Notifier.from_env(unset=True))
    stats: Stats = field(default_factory=Stats)
    totals: WorkerTotals = field(default_factory=WorkerTotals)
    workers: dict[int, _Worker] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _backoff: dict[int, float] = field(default_factory=dict)
    _state: ServingState | None = None
    querylog: QueryLog | None = None  # the one writer of the workers' query-log records

    def snapshot(self) -> Snapshot:
        self.stats.workers = sum(1 for w in self.workers.values() if w.ready)
        return self.totals.total(self.stats.snapshot())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._state = await loop.run_in_executor(None, build_state, self.config)  # compiles once
        self.stats.labels = label_sets(self.config, self._state)
        feed_index(self.stats, self._state)
        for slot in range(self.count):
            self._start(slot)
        metrics = start_metrics(self.config, self.snapshot, lambda: self.config)
        if self.config.subscribers is not None:  # RADIUS and subscriber metrics, not per worker
            from .subscribers.runtime import start_subscribers

            await start_subscribers(self.config, None, metrics, radius=True)
        watch_list_freshness(self.config, self.stats)
        audit = open_audit(self.config, self.snapshot, self._current_state)
        console = await open_console(
            self.config, lambda: self.config, self._current_state, self.snapshot
        )
        self._open_querylog(loop)
        if audit is not None:
            every(loop, 10.0, audit.tick)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        if self.config.lists.enabled and self.config.lists.refresh_interval:
            refresh = lambda: loop.create_task(refresh_lists(self.config, self.stats, self.reload))  # noqa: E731
            every(loop, self.config.lists.refresh_interval, refresh)
        self._watchdog(loop)
        await self.stopping.wait()
        self.notifier.stopping()
        await self._stop_workers()
        _close_quietly(audit, "the audit ledger's open period")
        _close_quietly(self.querylog, "the query log")
        if metrics is not None:
            metrics.stop()
        if console is not None:
            await console.stop()

    def _open_querylog(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.config.querylog:
            return
        from .querylog import QueryLog

        querylog = self.querylog = QueryLog(self.config.querylog)
        log.warning(
            "query log on: %s holds personal data (Decree 13/2023/ND-CP)", querylog.config.path
        )
        every(loop, 1.0, lambda: loop.run_in_executor(None, querylog.flush))

    def _current_state(self) -> ServingState:
        assert self._state is not None
        return self._state

    def _start(self, slot: int) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        process = context.Process(
            target=worker_main,
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
                self.notifier.ready(status=f"serving with {self.count} workers")
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

    async def reload(self) -> None:
        """Validate the new config (and compile lists) here; only then tell the workers."""
        self.notifier.reloading(status="reloading")
        loop = asyncio.get_running_loop()
        try:
            config = await loop.run_in_executor(None, self.load)
            state = await loop.run_in_executor(None, build_state, config)
        except (LachanError, OSError) as exc:
            log.error("reload failed, workers keep the previous configuration: %s", exc)
            self.stats.record_reload(False, time.time())
            self.notifier.ready(status="serving; last reload failed")
            return
        warn_restart_needed(self.config, config)
        self.config = applied_config(self.config, config)
        self._state = state
        feed_index(self.stats, state)
        for worker in self.workers.values():
            if worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGHUP)
        self.stats.record_reload(True, time.time())
        self.notifier.ready(status=f"serving with {self.count} workers")

    async def _stop_workers(self, grace: float = 5.0) -> None:
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

    def _watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ping systemd only while every worker has reported recently."""
        interval = watchdog_interval()
        if interval is None:
            return

        def ping() -> None:
            fresh = time.monotonic() - 5 * _REPORT_INTERVAL
            if all(w.last_report >= fresh for w in self.workers.values() if w.ready):
                self.notifier.watchdog()
            loop.call_later(interval, ping)

        ping()


def run_supervised(config: Config, load: ConfigLoader, count: int) -> None:
    asyncio.run(Supervisor(config, load, count).run())
