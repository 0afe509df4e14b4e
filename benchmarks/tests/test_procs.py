"""Process tracking: the harness finds a peer's whole tree and stops exactly that tree."""

import socket
import sys
import time

from procs import Proc, cpu_seconds, port_free, rss_kib

PARENT_WITH_CHILD = (
    "import subprocess, time; subprocess.Popen(['sleep', '30']); print('up', flush=True); "
    "time.sleep(30)"
)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_tree_rss_and_stop(tmp_path):
    proc = Proc("t", [sys.executable, "-c", PARENT_WITH_CHILD], tmp_path / "t.log")
    try:
        assert wait_for(lambda: len(proc.tree()) == 2)
        pids = proc.tree()
        assert rss_kib(pids) > 1000  # a Python interpreter is more than a megabyte
        assert cpu_seconds(pids) >= 0
        assert wait_for(lambda: "up" in proc.log_tail())
    finally:
        proc.stop(grace=3)
    assert not proc.alive()
    assert wait_for(lambda: rss_kib(pids) == 0)  # the grandchild went too


def test_port_free():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        assert not port_free("127.0.0.1", s.getsockname()[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert port_free("127.0.0.1", port)
