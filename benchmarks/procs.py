"""Processes the benchmark starts: spawn (optionally pinned), watch RSS and CPU, stop by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _stat(pid: int) -> tuple[str, int, int, int, int, int] | None:
    """(state, ppid, cpu jiffies, start time, user jiffies, system jiffies) of a live
    process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    rest = text.rsplit(")", 1)[1].split()
    user, system = int(rest[11]), int(rest[12])
    return rest[0], int(rest[1]), user + system, int(rest[19]), user, system


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                kids.setdefault(st[1], []).append(int(entry))
    return kids


def rss_kib(pids: list[int]) -> int:
    """Summed VmRSS of the given processes, in KiB (0 for any that are gone)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by the given live processes."""
    return sum(st[2] for st in map(_stat, pids) if st) / CLK_TCK


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds consumed so far by the given live processes: the system
    share is the kernel's work on the process's behalf (sockets, loopback delivery)."""
    stats = [st for st in map(_stat, pids) if st]
    return sum(st[4] for st in stats) / CLK_TCK, sum(st[5] for st in stats) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU-seconds all CPUs spent busy since boot (from /proc/stat): to see other jobs' load."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def port_free(host: str, port: int) -> bool:
    """True when nothing is bound to host:port on UDP (we never measure a stranger)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Proc:
    """One process tree this harness started; only ever signalled by the PIDs it recorded."""

    def __init__(self, name: str, argv: list[str], logfile: Path, cpus: str | None = None):
        if cpus and shutil.which("taskset"):
            argv = ["taskset", "-c", cpus, *argv]
        self.name, self.argv = name, argv
        self._log = logfile.open("w")
        self.t0 = time.monotonic()
        self.popen = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=logfile.parent,
        )
        self.known: dict[int, int] = {}  # pid -> start time, everything ever seen in our tree

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[int]:
        """PIDs of our child and its descendants right now (workers included)."""
        if not self.alive():
            return []
        kids, out, todo = _children_map(), [], [self.popen.pid]
        while todo:
            pid = todo.pop()
            st = _stat(pid)
            if st and pid not in out:
                out.append(pid)
                self.known[pid] = st[3]
                todo.extend(kids.get(pid, []))
        return out

    def log_tail(self, chars: int = 400) -> str:
        self._log.flush()
        try:
            return Path(self._log.name).read_text(errors="replace")[-chars:].replace("\n", " | ")
        except OSError:
            return ""

    def _still(self, pid: int, start: int) -> bool:
        st = _stat(pid)  # same PID and same start time: not a recycled PID
        return st is not None and st[3] == start and st[0] != "Z"

    def stop(self, grace: float = 8.0) -> None:
        """SIGTERM every recorded PID of our tree, SIGKILL what is left after grace."""
        self.tree()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid, start in self.known.items():
                if self._still(pid, start):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(
                self._still(p, s) for p, s in self.known.items()
            ):
                self.popen.poll()
                time.sleep(0.05)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
