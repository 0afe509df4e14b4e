"""The worker's end of the supervisor's pipe (resolver/supervisor.py)."""

from __future__ import annotations

import multiprocessing

import pytest

from resolver.stats import Stats
from resolver.supervisor import report


def test_a_report_goes_down_the_pipe_and_none_after_it_is_closed() -> None:
    theirs, ours = multiprocessing.Pipe()
    stats = Stats()
    stats.cache_hits = 7
    report(ours, stats, None)
    kind, snapshot = theirs.recv()
    assert kind == "stats" and snapshot == stats.snapshot()
    ours.close()  # the worker's last report closed it; the periodic job may still fire
    report(ours, stats, None)  # once raised OSError("handle is closed"), logged as a failure
    with pytest.raises(EOFError):  # nothing more was sent: only the end of the pipe
        theirs.recv()
