"""The one composition root: build_process wires a serving process for every role.

A role is what one process does. SINGLE answers DNS and hosts everything else; with
``workers: N`` the same pieces are split between one SUPERVISOR (what is not on the hot path:
metrics, the audit feed, the console, RADIUS, the one query-log writer, list refreshes, the
systemd watchdog) and N WORKERs (the listeners). WIRING lists every piece once, with the roles
that get it, in the order it is wired: a new piece is added there and every role that needs it
gets it. Stopping runs the other way: the front (the listeners, or the workers) stops first so
in-flight answers and their query-log records land, then each piece closes in reverse order.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .app import ConfigLoader, Server, build_resolver, feed_index, label_sets, warn_restart_needed
from .config import Config
from .errors import LachanError
from .list_freshness import refresh_lists, watch_list_freshness
from .querystate import LoggedStats
from .reloadable import applied_config
from .sdnotify import Notifier, watchdog_interval
from .services import close_quietly, every, open_audit, open_console, settle_memory, start_metrics
from .state import Policies, ServingState, build_state
from .stats import Snapshot, Stats

if TYPE_CHECKING:
    import multiprocessing.connection

    from .metrics_http import MetricsServer
    from .querylog import QueryLog
    from .supervisor import WorkerPool

log = logging.getLogger(__name__)


class Role(enum.Enum):
    SINGLE = "single"  # answers DNS and hosts everything (workers: 1)
    SUPERVISOR = "supervisor"  # forks the workers; hosts what is not on the hot path
    WORKER = "worker"  # answers DNS; reports to the supervisor over a pipe

    @property
    def hosts(self) -> bool:
        """Hosts the once-per-host pieces (metrics, ledger, console, RADIUS, the writers)."""
        return self is not Role.WORKER


SINGLE, SUPERVISOR, WORKER = Role.SINGLE, Role.SUPERVISOR, Role.WORKER
EVERY = frozenset(Role)
ANSWERS = frozenset({SINGLE, WORKER})
HOSTS = frozenset({SINGLE, SUPERVISOR})

WIRING: tuple[tuple[str, frozenset[Role]], ...] = (
    ("stats", EVERY),  # first: every other piece feeds or reads the counters
    ("listeners", ANSWERS),  # TCP before UDP (Server.start); a bound port answers from here on
    ("encrypted", ANSWERS),  # DoT, DoH: behind the same Resolver, once plain DNS is up
    ("querylog", HOSTS),  # the one writer, open before any worker can ship it records
    ("workers", frozenset({SUPERVISOR})),  # after the index is compiled: workers map the file
    ("metrics", HOSTS),  # one /metrics per host: the supervisor sums its workers' counters
    ("allows", ANSWERS),  # temporary allows reach whoever builds answers
    ("subscribers", EVERY),  # the store follower where answers are made; RADIUS once per host
    ("list_freshness", HOSTS),
    ("audit", HOSTS),  # one ledger per host, fed the host's summed counters
    ("console", HOSTS),
    ("report", frozenset({WORKER})),  # counters and query-log records to the supervisor
    ("signals", EVERY),  # once everything a reload or a stop touches exists
    ("list_refresh", HOSTS),
    ("watchdog", HOSTS),  # last: pings only once the process serves
)
LINKS = frozenset({"workers", "report"})  # only there because there are several processes


def plan(role: Role) -> tuple[str, ...]:
    """The pieces a process of ``role`` gets, in wiring order."""
    return tuple(name for name, roles in WIRING if role in roles)


@dataclass
class Process:
    """One serving process: its config, state, counters, and what build_process wired."""

    config: Config
    load: ConfigLoader
    role: Role
    state: ServingState  # the supervisor's; a process that answers reads its resolver's
    notifier: Notifier
    wallclock: Callable[[], float] = time.time  # what schedules see; tests inject a fake one
    conn: multiprocessing.connection.Connection | None = None  # a worker's pipe
    stats: Stats = field(default_factory=Stats)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    server: Server | None = None
    pool: WorkerPool | None = None
    querylog: QueryLog | None = None
    metrics: MetricsServer | None = None
    wired: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    closers: list[Callable[[], object]] = field(default_factory=list)

    def current_config(self) -> Config:
        return self.config

    def current_state(self) -> ServingState:
        """The state in force (temporary allows swap the resolver's between reloads)."""
        return self.server.resolver.state if self.server is not None else self.state

    def snapshot(self) -> Snapshot:
        """The counters this process exports: its own, or its workers' summed with its own."""
        if self.pool is None:
            return self.stats.snapshot()
        self.stats.workers = self.pool.ready_count()
        return self.pool.snapshot(self.stats.snapshot())

    def spawn(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` as a task kept until done, and cancelled if still running at stop."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reload(self) -> bool:
        """Re-read config, profiles and lists off the loop; apply them if valid, else keep serving.

        Queries are answered from the old state until the one-reference swap. A supervisor
        validates (and compiles the index) before it forwards SIGHUP to its workers; a worker
        does not count its reload: the supervisor counts it once for all of them.
        """
        self.notifier.reloading(status="reloading")
        loop = asyncio.get_running_loop()
        try:
            fresh = await loop.run_in_executor(None, self.load)
            state = await loop.run_in_executor(None, build_state, fresh)
        except (LachanError, OSError) as exc:  # OSError: e.g. a full disk while compiling
            log.error("reload failed, still serving the previous configuration: %s", exc)
            self._reloaded(False)
            return False
        warn_restart_needed(self.config, fresh)
        self.config = applied_config(self.config, fresh)
        self.state = state
        if self.server is not None:
            self.server.apply(self.config, fresh, state)
        if self.pool is not None:
            self.pool.signal(signal.SIGHUP)  # each worker re-reads and maps the compiled index
        self.stats.labels = label_sets(self.config, state)
        feed_index(self.stats, state)
        self._reloaded(True)
        log.info("reloaded: policy %s, index %s", state.policy_digest, state.index_digest or "none")
        return True

    def _reloaded(self, ok: bool) -> None:
        if self.role is WORKER:
            return
        self.stats.record_reload(ok, time.time())
        self.notifier.ready(status=self._serving() if ok else "serving; last reload failed")

    def _serving(self) -> str:
        return "serving" if self.pool is None else f"serving with {self.pool.count} workers"

    async def run(self, ready: Callable[[Server], None] | None = None) -> None:
        """Say ready, serve until ``stopping`` (SIGTERM, SIGINT, or a test), then drain."""
        if self.conn is not None:
            from .supervisor import announce_ready

            announce_ready(self.conn)
        elif self.pool is None:  # a supervisor is ready once all its workers are
            self.notifier.ready(status="serving")
        if self.server is not None:
            self.server.announce()
        if ready is not None and self.server is not None:
            ready(self.server)
        try:
            await self.stopping.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        log.info("lachan stopping")
        self.notifier.stopping()
        if self.server is not None:
            await self.server.stop()  # in-flight queries finish within the grace
        if self.pool is not None:
            await self.pool.stop()  # and the workers' last counters and records arrive
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for close in reversed(self.closers):
            result = close()
            if inspect.isawaitable(result):
                await result

    # -- the pieces, in WIRING's order ----------------------------------------------------
    async def _wire_stats(self) -> None:
        # With the query log on, whoever answers queues a record per answer (LoggedStats).
        logged = self.config.querylog and self.role is not SUPERVISOR
        self.stats = (LoggedStats if logged else Stats)(label_sets(self.config, self.state))
        if self.role is SINGLE:
            self.stats.workers = 1  # a supervisor counts its ready workers (snapshot)
        feed_index(self.stats, self.state)

    async def _wire_listeners(self) -> None:
        settle_memory()  # the state just built lives for hours: out of the collector's way
        resolver = build_resolver(self.config, self.state, self.stats, wallclock=self.wallclock)
        reuse_port = self.role is WORKER  # workers share the ports (SO_REUSEPORT)
        self.server = Server(self.config, resolver, reuse_port, stopping=self.stopping)
        await self.server.start()

    async def _wire_encrypted(self) -> None:
        if self.server is not None and self.config.encrypted.enabled:  # their stack only then
            await self.server.start_encrypted()

    async def _wire_querylog(self) -> None:
        if not self.config.querylog:
            return
        if self.server is not None:
            querylog = self.server.resolver.querylog
        else:
            from .querylog import QueryLog

            querylog = QueryLog(self.config.querylog)
        assert querylog is not None
        self.querylog = querylog
        log.warning(
            "query log on: %s holds personal data (Decree 13/2023/ND-CP)", querylog.config.path
        )
        loop = asyncio.get_running_loop()
        every(loop, 1.0, lambda: loop.run_in_executor(None, querylog.flush))
        self.closers.append(lambda: close_quietly(querylog, "the query log"))

    async def _wire_workers(self) -> None:
        from .supervisor import WorkerPool

        def all_ready() -> None:
            self.notifier.ready(status=self._serving())

        count = self.config.workers
        self.pool = WorkerPool(self.load, count, worker_main, self.stats, self.stopping, all_ready)
        self.pool.querylog = self.querylog
        self.pool.start()

    async def _wire_metrics(self) -> None:
        self.metrics = start_metrics(self.config, self.snapshot, self.current_config)
        if self.metrics is not None:
            self.closers.append(self.metrics.stop)

    async def _wire_allows(self) -> None:
        assert self.server is not None
        self.server.follow_allows()

    async def _wire_subscribers(self) -> None:
        if self.config.subscribers is None:  # ISP subscriber mode: nothing of it loads otherwise
            return
        from .subscribers.runtime import start_subscribers

        resolver = self.server.resolver if self.server is not None else None
        await start_subscribers(self.config, resolver, self.metrics, radius=self.role.hosts)

    async def _wire_list_freshness(self) -> None:
        watch_list_freshness(self.config, self.stats)

    async def _wire_audit(self) -> None:
        audit = open_audit(self.config, self.snapshot, self.current_state)
        if audit is None:
            return
        every(asyncio.get_running_loop(), min(10.0, self.config.audit.period), audit.tick)
        self.closers.append(lambda: close_quietly(audit, "the audit ledger's open period"))

    async def _wire_console(self) -> None:
        console = await open_console(
            self.config, self.current_config, self.current_state, self.snapshot,
            self.stats.console_refused,
        )  # fmt: skip
        if console is not None:
            self.closers.append(console.stop)

    async def _wire_report(self) -> None:
        from .supervisor import REPORT_INTERVAL, report

        conn, querylog = self.conn, self.server.resolver.querylog if self.server else None
        assert conn is not None

        def last_report() -> None:
            report(conn, self.stats, querylog)
            conn.close()

        every(
            asyncio.get_running_loop(), REPORT_INTERVAL, lambda: report(conn, self.stats, querylog)
        )
        self.closers.append(last_report)

    async def _wire_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may take signals (tests run servers in threads)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        # A worker leaves Ctrl-C (sent to the whole process group) to its supervisor.
        loop.add_signal_handler(signal.SIGINT, self.stopping.set if self.role.hosts else _ignore)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.spawn(self.reload()))

    async def _wire_list_refresh(self) -> None:
        interval = self.config.lists.refresh_interval
        if not (self.config.lists.enabled and interval):
            return
        every(
            asyncio.get_running_loop(),
            interval,
            lambda: self.spawn(refresh_lists(self.config, self.stats, self.reload)),
        )

    async def _wire_watchdog(self) -> None:
        """Ping systemd's watchdog from the event loop: a stuck loop (or worker) stops the pings."""
        interval = watchdog_interval()
        if interval is None:
            return
        loop, pool = asyncio.get_running_loop(), self.pool

        def ping() -> None:
            if pool is None or pool.fresh():
                self.notifier.watchdog()
            loop.call_later(interval, ping)

        ping()


def _ignore() -> None:
    pass


async def build_process(
    config: Config,
    load: ConfigLoader,
    role: Role,
    conn: multiprocessing.connection.Connection | None = None,
    wallclock: Callable[[], float] = time.time,
    policies: Policies | None = None,  # load_policies(config), when `serve` checked them already
) -> Process:
    """Wire a serving process of ``role`` from ``config``: every piece of plan(role), in order."""
    notifier = Notifier.from_env(unset=True)  # unset before forking: workers never notify
    loop = asyncio.get_running_loop()
    state = await loop.run_in_executor(None, build_state, config, None, policies)  # compiled once
    process = Process(config, load, role, state, notifier, wallclock, conn)
    for name in plan(role):
        await getattr(process, f"_wire_{name}")()
        process.wired.append(name)
    return process


async def serve(
    config: Config,
    load: ConfigLoader,
    ready: Callable[[Server], None] | None = None,
    wallclock: Callable[[], float] = time.time,
    policies: Policies | None = None,
) -> None:
    """Run one process until SIGTERM or SIGINT (or ``server.stopping``); SIGHUP reloads."""
    await (await build_process(config, load, SINGLE, None, wallclock, policies)).run(ready)


async def supervise(config: Config, load: ConfigLoader, policies: Policies | None = None) -> None:
    """Run a supervisor and its ``config.workers`` workers until SIGTERM or SIGINT."""
    await (await build_process(config, load, SUPERVISOR, policies=policies)).run()


def worker_main(
    load: ConfigLoader, worker_id: int, conn: multiprocessing.connection.Connection
) -> None:
    """Entry point of a worker process (spawned: it shares nothing but the pipe)."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s worker{worker_id} %(name)s: %(message)s",
    )
    _run_loop(_worker(load, conn))


async def _worker(load: ConfigLoader, conn: multiprocessing.connection.Connection) -> None:
    await (await build_process(load(), load, WORKER, conn=conn)).run()


def run(config: Config, load: ConfigLoader, policies: Policies | None = None) -> None:
    """Serve as one process, or as a supervisor with workers when ``workers`` > 1."""
    if config.workers > 1:
        asyncio.run(supervise(config, load, policies))  # not on the hot path: the stdlib loop
    else:
        _run_loop(serve(config, load, policies=policies))


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (about 4x the stdlib loop's throughput)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main)
        return
    uvloop.run(main)
