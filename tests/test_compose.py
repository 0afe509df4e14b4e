"""resolver/compose.py: one function wires a serving process for every role.

Issue 12 found a single process and a worker wired by two functions that had drifted apart
(workers never wrote the query log). These tests fail if the roles diverge again: the single
process must get exactly the pieces a supervisor and its workers get between them, and the
process build_process returns for each role must have wired exactly its plan, for real.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import signal
import urllib.request
from pathlib import Path

import dns.message
import dns.query

from resolver import config
from resolver.compose import LINKS, SINGLE, SUPERVISOR, WIRING, WORKER, Role, build_process, plan
from resolver.config import Config
from tests.stub_upstream import StubUpstream


def test_a_single_process_gets_what_a_supervisor_and_its_workers_get_between_them() -> None:
    single = set(plan(SINGLE))
    split = set(plan(SUPERVISOR)) | set(plan(WORKER))
    assert single == split - LINKS
    assert LINKS <= split and not LINKS & single  # links exist only between processes
    assert all(roles for _, roles in WIRING)  # no piece wired for nobody


def test_each_role_gets_the_pieces_it_needs() -> None:
    for role in Role:
        assert {"stats", "signals", "subscribers"} <= set(plan(role)), role
    for role in (SINGLE, SUPERVISOR):  # once per host
        pieces = set(plan(role))
        assert {"metrics", "audit", "querylog", "console", "watchdog", "list_refresh"} <= pieces
    for role in (SINGLE, WORKER):  # whoever answers DNS
        assert {"listeners", "encrypted", "allows"} <= set(plan(role))
        assert plan(role).index("listeners") < plan(role).index("encrypted")  # same Server
    assert not {"listeners", "encrypted"} & set(plan(SUPERVISOR))  # it binds no DNS socket
    assert "report" in plan(WORKER)  # counters and query-log records go to the writer
    # The query log's writer is open before any worker can ship it records.
    assert plan(SUPERVISOR).index("querylog") < plan(SUPERVISOR).index("workers")


def _config(tmp_path: Path, upstream: str) -> Config:
    text = (
        f"upstreams: ['{upstream}']\nlists: {{enabled: false}}\nlisten: ['127.0.0.1:0']\n"
        f"metrics: {{listen: '127.0.0.1:0'}}\nquerylog: {{path: '{tmp_path / 'q.jsonl'}'}}\n"
    )
    return config.parse(text, "compose.yaml")


def _ask(port: int, name: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)


def test_a_single_process_is_built_with_its_whole_plan(tmp_path: Path) -> None:
    with StubUpstream(seed=31) as stub:
        cfg = _config(tmp_path, stub.address)

        async def main() -> None:
            process = await build_process(cfg, lambda: cfg, SINGLE)
            assert process.wired == list(plan(SINGLE))
            assert process.server is not None and process.metrics is not None
            assert process.querylog is process.server.resolver.querylog is not None
            loop = asyncio.get_running_loop()
            port = process.server.tcp_servers[0].sockets[0].getsockname()[1]
            reply = await loop.run_in_executor(None, _ask, port, "one.example.test")
            assert reply.answer
            scrape = f"http://127.0.0.1:{process.metrics.address.port}/metrics"
            body = await loop.run_in_executor(None, lambda: urllib.request.urlopen(scrape).read())
            assert re.search(rb"\nlachan_workers\{[^}]*\} 1\.0\n", body)  # it counts itself
            assert await process.reload()  # the same reload a SIGHUP starts
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                assert loop.remove_signal_handler(signum), signum  # they were wired
            process.stopping.set()
            await process.run()

        asyncio.run(main())
        assert "one.example.test" in (tmp_path / "q.jsonl").read_text()  # flushed at stop


def test_a_worker_is_built_with_its_plan_and_reports_to_its_supervisor(tmp_path: Path) -> None:
    with StubUpstream(seed=32) as stub:
        cfg = _config(tmp_path, stub.address)
        supervisor_end, worker_end = multiprocessing.Pipe(duplex=False)

        async def main() -> None:
            process = await build_process(cfg, lambda: cfg, WORKER, conn=worker_end)
            assert process.wired == list(plan(WORKER))
            assert process.server is not None and process.metrics is None  # the host's job
            loop = asyncio.get_running_loop()
            running = loop.create_task(process.run())
            port = process.server.tcp_servers[0].sockets[0].getsockname()[1]
            reply = await loop.run_in_executor(None, _ask, port, "two.example.test")
            assert reply.answer
            assert loop.remove_signal_handler(signal.SIGHUP)
            process.stopping.set()
            await running

        asyncio.run(main())
        messages = []
        try:
            while supervisor_end.poll():
                messages.append(supervisor_end.recv())
        except EOFError:  # the worker closed its end after its last report
            pass
    kinds = [kind for kind, _ in messages]
    assert kinds[0] == "ready" and "stats" in kinds
    records = [r for kind, batch in messages if kind == "querylog" for r in batch]
    assert any("two.example.test" in str(record) for record in records)
    assert not (tmp_path / "q.jsonl").exists()  # a worker ships records, it never writes
