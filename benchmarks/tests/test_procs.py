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


def test_cpu_split_follows_user_and_kernel_time(tmp_path):
    from cases import per_query_cpu
    from procs import cpu_split

    # time.monotonic is read in user space (vDSO); process_time would be a system call each.
    busy_user = (
        "import time; t = time.monotonic() + 0.4\nwhile time.monotonic() < t: pass\ntime.sleep(30)"
    )
    proc = Proc("u", [sys.executable, "-c", busy_user], tmp_path / "u.log")
    try:
        assert wait_for(lambda: cpu_split(proc.tree())[0] >= 0.25)
        user, system = cpu_split(proc.tree())
        assert user >= 0.25 and system < user  # a loop of arithmetic is its own code's time
        assert abs(user + system - cpu_seconds(proc.tree())) < 0.02
    finally:
        proc.stop(grace=3)
    assert per_query_cpu((1.0, 2.0), (1.5, 3.0), 100_000) == {
        "peer_user_us": 5.0,
        "peer_kernel_us": 10.0,
    }
    assert per_query_cpu((1.0, 2.0), (1.5, 3.0), 0) == {}
