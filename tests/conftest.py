"""Shared fixtures: the stub upstream and ``lachan serve`` as a real subprocess on loopback.

``stub``: a fresh StubUpstream (tests/stub_upstream.py) on 127.0.0.1, stopped after the test.
``lachan``: a factory ``lachan(upstreams=None, config=None, ipv6=True)`` starting the real
server (``--upstream`` the ``stub`` by default; ``upstreams=[]`` passes no --upstream flag); every server it started is terminated after the
test, and the test fails if the server logged a traceback or an error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `tests.stub_upstream` imports from any test folder

from tests.strict_skips import (  # noqa: E402, F401  (hooks: CI=true fails on any skip)
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
)
from tests.stub_upstream import LachanProcess, StubUpstream  # noqa: E402

LachanFactory = Callable[..., LachanProcess]


@pytest.fixture
def stub() -> Iterator[StubUpstream]:
    with StubUpstream() as server:
        yield server


@pytest.fixture
def lachan(stub: StubUpstream, tmp_path: Path) -> Iterator[LachanFactory]:
    started: list[LachanProcess] = []

    def start(
        upstreams: list[str] | None = None,
        config: str | None = None,
        ipv6: bool = True,
        expect_errors: bool = False,
    ) -> LachanProcess:
        process = LachanProcess(
            tmp_path, [stub.address] if upstreams is None else upstreams, config, ipv6
        )
        process.expect_errors = expect_errors  # type: ignore[attr-defined]
        started.append(process.start())
        return process

    yield start
    for process in started:
        assert process.alive() or process.stopped, f"lachan died:\n{process.stderr()}"
        process.stop()
        if not getattr(process, "expect_errors", False):
            process.assert_clean_log()


@pytest.fixture(scope="module")
def module_stub() -> Iterator[StubUpstream]:
    """One stub for a whole test module (use unique names per test: counts are shared)."""
    with StubUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def module_lachan(
    module_stub: StubUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LachanProcess]:
    """One lachan serving the module's stub on 127.0.0.1 and ::1, default config."""
    process = LachanProcess(tmp_path_factory.mktemp("lachan"), [module_stub.address]).start()
    yield process
    assert process.alive(), f"lachan died during the module:\n{process.stderr()}"
    process.stop()
    process.assert_clean_log()


@pytest.fixture
def fresh_stub(module_stub: StubUpstream) -> Iterator[StubUpstream]:
    """The module stub, back in normal mode after the test."""
    yield module_stub
    module_stub.mode = "normal"
