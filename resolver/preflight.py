"""What `lachan serve` would die of, found before it starts: one line per problem, file and key.

``check-config`` and ``serve`` both run these checks, so a config that passes the check (as
systemd's ExecStartPre) does not then fail to start in a restart loop. Files are checked
always; the live state (ports free, ledger not locked by a running instance) only when asked,
since checking a config to reload into a running server would find its own ports busy.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config, Listener
from .errors import LachanError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass
class Findings:
    """Problems stop the server; notes say what could not be checked, and why."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check(
    config: Config, live: bool = True, catalogue: bool = True, flags: Collection[str] = ()
) -> Findings:
    """Everything serving this config needs from the file system (and, if ``live``, now).

    ``catalogue=False`` leaves the catalogue to ``serve``'s own first read of it (the same
    one-line error, without parsing it twice at every start). ``flags``: the keys (listen,
    listen_tls, listen_https) given on the command line, so problems name the flag."""
    found = Findings()
    where = config.source
    _check_clashes(config, found, flags)
    _check_loops(config, found)
    if config.lists.enabled:
        _check_lists(config, found, catalogue)
    if config.audit.ledger is not None and config.audit.key is not None:
        _check_audit(config, found, live)
    if config.querylog is not None:
        _check_folder(found, where, "querylog.path", config.querylog.path.parent)
        _check_not_folder(found, where, "querylog.path", config.querylog.path, "log")
    if live:  # what serve binds (a fragment checked with --files-only need not listen)
        if not config.listeners and not config.encrypted.enabled:  # serve would bind nothing
            found.problems.append(f"{where}: listen: no address to answer DNS on "
                                  "(give listen, listen_tls or listen_https)")  # fmt: skip
        for i, listener in enumerate(config.listeners):
            _check_port(found, _named("listen", i, where, flags), listener)
        for key in ("listen_tls", "listen_https"):  # TCP only, as serve binds them
            for i, (host, port) in enumerate(getattr(config.encrypted, key)):
                _check_port(found, _named(key, i, where, flags), Listener(host, port), udp=False)
    return found


def dns_binds(config: Config) -> list[tuple[str, str, Listener]]:
    """(key, UDP or TCP, address) of every DNS socket serve binds: listen, listen_tls/https."""
    binds = []
    for i, listener in enumerate(config.listeners):
        binds += [(f"listen[{i}]", "UDP", listener), (f"listen[{i}]", "TCP", listener)]
    for key in ("listen_tls", "listen_https"):
        for i, (host, port) in enumerate(getattr(config.encrypted, key)):
            binds.append((f"{key}[{i}]", "TCP", Listener(host, port)))
    return binds


def _check_clashes(config: Config, found: Findings, flags: Collection[str]) -> None:
    """The same address twice: the second bind fails (EADDRINUSE), whatever the ports' state."""
    first: dict[tuple[str, Listener], str] = {}
    said: set[str] = set()
    for key, proto, listener in dns_binds(config):
        taken = first.setdefault((proto, listener), key)
        if taken != key and key not in said and listener.port != 0:
            said.add(key)
            name, index = key.rstrip("]").split("[")
            where = _named(name, int(index), config.source, flags)
            found.problems.append(f"{where}: {listener} ({proto}) is already {taken}")


def _check_loops(config: Config, found: Findings) -> None:
    from .config_source import is_own_listener

    if config.upstreams_from_resolv_conf:
        return  # read later, without lachan's own addresses
    for i, upstream in enumerate(config.upstreams):
        if is_own_listener(upstream.host, upstream.port, config.listeners):
            address = Listener(upstream.host, upstream.port)
            found.problems.append(f"{config.source}: upstreams[{i}]: {address} is lachan's own "
                                  "listen address: every miss would come back to it")  # fmt: skip


def _named(key: str, index: int, where: str, flags: Collection[str]) -> str:
    return "--" + key.replace("_", "-") if key in flags else f"{where}: {key}[{index}]"


def _check_audit(config: Config, found: Findings, live: bool) -> None:
    """The key loads, the ledger's folder is writable, and the ledger's tail is this site's."""
    where, audit = config.source, config.audit
    assert audit.ledger is not None and audit.key is not None
    key = _check_key(where, audit.key, found)
    _check_folder(found, where, "audit.ledger", audit.ledger.parent)
    _check_not_folder(found, where, "audit.ledger", audit.ledger, "ledger")
    instance = audit.instance or socket.gethostname()  # as audit_feed opens it
    labels_ok = _check_labels(found, where, config.site.id, audit.instance, instance)
    if key is not None and labels_ok and audit.ledger.is_file():
        from .audit.ledger import tail_problem

        problem = tail_problem(audit.ledger, key, config.site.id, instance)
        if problem:
            found.problems.append(f"{where}: audit.ledger: {problem}")
    if live:
        _check_lock(found, where, audit.ledger)


def _check_labels(found: Findings, where: str, site: str, given: str, instance: str) -> bool:
    """Every ledger record carries site.id and the instance: serve's first open refuses them
    unless they are labels (the host name, the default instance, often has dots). Without a
    ledger a site.id that is not a label is a warning (preflight_services.py)."""
    from .audit.record import check_label
    from .errors import AuditError

    ok = True
    for key, value, hint in (
        ("site.id", site, ""),
        ("audit.instance", instance, "" if given else " (the host name: set audit.instance)"),
    ):
        try:
            check_label(value, key)
        except AuditError as exc:
            found.problems.append(f"{where}: {exc}{hint}")
            ok = False
    return ok


def _check_not_folder(found: Findings, where: str, key: str, path: Path, what: str) -> None:
    if path.is_dir():
        found.problems.append(f"{where}: {key}: {path} is a folder; name the {what} file in it")


def _check_lists(config: Config, found: Findings, catalogue: bool) -> None:
    from .lists.catalogue import load_for
    from .settings import default_state_dir

    if catalogue:
        try:
            load_for(config.lists, config.source)
        except LachanError as exc:
            found.problems.append(str(exc))
    for i, extra in enumerate(config.lists.extra_sources):
        if extra.file is not None and not extra.file.is_file():
            where = f"{config.source}: lists.extra_sources[{i}].file"
            found.problems.append(f"{where}: cannot read {extra.file}")
    state_dir = config.lists.state_dir or default_state_dir()
    problem = creatable(state_dir)
    if problem:
        found.problems.append(f"{config.source}: lists.state_dir: {problem}")


def _check_key(where: str, key: Path, found: Findings) -> Ed25519PrivateKey | None:
    from .audit.keys import load_private_key  # cryptography only when a ledger is configured

    try:
        return load_private_key(key)
    except LachanError as exc:
        hint = " (create it with `lachan audit keygen --out DIR`)" if not key.exists() else ""
        found.problems.append(f"{where}: audit.key: {exc}{hint}")
        return None


def _check_folder(found: Findings, where: str, key: str, folder: Path) -> None:
    if not folder.is_dir():
        found.problems.append(f"{where}: {key}: folder {folder} does not exist")
    elif not os.access(folder, os.W_OK | os.X_OK):
        found.problems.append(f"{where}: {key}: folder {folder} is not writable by this user")


def creatable(folder: Path) -> str | None:
    """None when ``folder`` is a writable folder or can be made one, else why not."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder, so {folder} cannot be created"
    if not os.access(probe, os.W_OK | os.X_OK):
        verb = "is not writable" if probe == folder else f"cannot be created in {probe}"
        return f"{folder} {verb} by this user"
    return None


def _check_lock(found: Findings, where: str, ledger: Path) -> None:
    try:
        fd = os.open(ledger, os.O_RDONLY)
    except FileNotFoundError:
        return  # serve creates it
    except OSError as exc:
        found.problems.append(f"{where}: audit.ledger: cannot open {ledger}: {exc.strerror}")
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        found.problems.append(
            f"{where}: audit.ledger: {ledger} is locked by another process "
            "(is lachan already running with this ledger?)"
        )
    finally:
        os.close(fd)  # closing releases the lock if we took it


def _check_port(found: Findings, where: str, listener: Listener, udp: bool = True) -> None:
    failed = bind_error(listener, udp=udp)
    if failed is not None:
        _port_finding(found, where, listener, *failed)


def bind_error(
    listener: Listener, udp: bool = True, tcp: bool = True
) -> tuple[str, OSError] | None:
    """("UDP" or "TCP", the error) when ``listener`` cannot be bound now, else None."""
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    kinds = [(socket.SOCK_DGRAM, "UDP")] * udp + [(socket.SOCK_STREAM, "TCP")] * tcp
    for kind, name in kinds:
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((listener.host, listener.port))
            except OSError as exc:
                return name, exc
    return None


def _port_finding(
    found: Findings, where: str, listener: Listener, proto: str, exc: OSError
) -> None:
    if exc.errno == errno.EACCES:
        found.notes.append(
            f"{where}: cannot know whether {listener} is free: binding port {listener.port} "
            "needs root or CAP_NET_BIND_SERVICE (the systemd unit grants it)"
        )
    elif exc.errno == errno.EADDRINUSE:
        found.problems.append(
            f"{where}: {listener} ({proto}) is already in use "
            "(another DNS server, or lachan already running?)"
        )
    else:
        found.problems.append(f"{where}: cannot listen on {listener} ({proto}): {exc.strerror}")
