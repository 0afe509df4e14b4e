"""The systemd notify protocol (sd_notify) over AF_UNIX datagrams, without extra dependencies."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

# A send must never stall the event loop for long: systemd's notify socket has a large
# receive buffer, so a full buffer means systemd is wedged and we would rather drop a ping.
_SEND_TIMEOUT = 0.5


def _monotonic_usec() -> int:
    # systemd compares MONOTONIC_USEC against its own CLOCK_MONOTONIC reading, so this must
    # be that exact clock (time.monotonic() is documented as "a" monotonic clock only).
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_address(value: str | None) -> str | bytes | None:
    """Turn a NOTIFY_SOCKET value into a connectable AF_UNIX address, or None if unusable.

    A leading ``@`` names a Linux abstract socket (a NUL byte on the wire); an absolute
    path is a filesystem socket. Other forms (``vsock:``, relative paths) are not ours to
    guess at, so notification is switched off rather than sent somewhere wrong.
    """
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between watchdog pings (half of WATCHDOG_USEC), or None if there is no watchdog.

    WATCHDOG_PID, when set, names the process the watchdog is meant for; a child that
    inherited the environment must not ping on its parent's behalf.
    """
    env = os.environ if environ is None else environ
    wpid = env.get("WATCHDOG_PID")
    if wpid:
        try:
            if int(wpid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2_000_000


def _line(key: str, value: str) -> str:
    # The protocol is newline-separated KEY=VALUE; a newline inside STATUS would start a
    # bogus assignment, so it is flattened.
    return f"{key}={value.replace(chr(10), ' ')}\n"


class Notifier:
    """Sends state changes to systemd; every method is a cheap no-op when not under systemd.

    Failures are swallowed and reported as ``False``: a lost notification must never take
    the resolver down. Create it once (``Notifier.from_env()``) in the process that systemd
    started (NotifyAccess=main), and keep it for the process lifetime.
    """

    def __init__(
        self,
        address: str | bytes | None,
        *,
        monotonic_usec: Callable[[], int] = _monotonic_usec,
    ) -> None:
        self._address = address
        self._monotonic_usec = monotonic_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, unset: bool = False) -> Notifier:
        """Build from NOTIFY_SOCKET; with ``unset=True`` remove it from ``os.environ``.

        Unsetting keeps worker processes spawned later from inheriting the socket and
        talking to systemd themselves (systemd would ignore them under NotifyAccess=main,
        logging a warning per message).
        """
        env = os.environ if environ is None else environ
        notifier = cls(socket_address(env.get("NOTIFY_SOCKET")))
        if unset:
            for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(key, None)
        return notifier

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a usable notify socket."""
        return self._address is not None

    def send(self, *assignments: tuple[str, str]) -> bool:
        """Send one datagram of KEY=VALUE assignments; True if systemd accepted it."""
        if self._address is None:
            return False
        payload = "".join(_line(key, value) for key, value in assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.settimeout(_SEND_TIMEOUT)
            self._sock.sendto(payload, self._address)
        except OSError:
            self.close()
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup finished: sockets bound, lists loaded, answering queries."""
        return self.send(("READY", "1"), *self._status(status))

    def reloading(self, status: str | None = None) -> bool:
        """A reload started; MONOTONIC_USEC lets systemd match it to the READY=1 that ends it."""
        stamp = ("MONOTONIC_USEC", str(self._monotonic_usec()))
        return self.send(("RELOADING", "1"), stamp, *self._status(status))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown started: in-flight queries are draining."""
        return self.send(("STOPPING", "1"), *self._status(status))

    def status(self, text: str) -> bool:
        """Free-form one-line status shown by ``systemctl status``."""
        return self.send(("STATUS", text))

    def watchdog(self) -> bool:
        """Keep-alive ping; call it from inside the event loop so a stuck loop stops pinging."""
        return self.send(("WATCHDOG", "1"))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (e.g. while compiling a large blocklist index)."""
        return self.send(("EXTEND_TIMEOUT_USEC", str(int(seconds * 1_000_000))))

    def close(self) -> None:
        """Release the socket; a later send reopens it."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @staticmethod
    def _status(status: str | None) -> tuple[tuple[str, str], ...]:
        return () if status is None else (("STATUS", status),)
