"""What `serve` runs without rather than refusing to start: warnings for `check-config`.

When the metrics endpoint, the console, the block page or RADIUS accounting cannot start, or
the subscriber file cannot be read, serve logs an error and keeps answering DNS: a child's
filter matters more than a dashboard, so none of these stops it. check-config (systemd's
ExecStartPre) says so before the start, as one warning line naming the file and key, and
still passes.
"""

from __future__ import annotations

import errno
from pathlib import Path

from .audit.label import LABEL
from .config import Config, Listener
from .errors import LachanError
from .preflight import bind_error, dns_binds

WITHOUT = "serve would run without it"


def warnings(config: Config, live: bool) -> list[str]:
    """One line per part serve would start without (ports only when ``live``)."""
    where, found = config.source, []
    if config.audit.ledger is None and not LABEL.fullmatch(config.site.id):
        # With a ledger preflight refuses it (serve could not open the ledger); without one
        # serve runs, but the province's registry, which matches ids as they are, cannot.
        found.append(f"{where}: site.id: {config.site.id!r} is not a label ([a-z0-9_-], no "
                     "dots or colons): the province's registry cannot match it")  # fmt: skip
    taken = {(proto, address): key for key, proto, address in reversed(dns_binds(config))}
    for key, address, proto in _service_ports(config):
        if (proto, address) in taken and address.port != 0:  # the second bind would fail
            found.append(f"{where}: {key}: {address} ({proto}) is already "
                         f"{taken[proto, address]}: {WITHOUT}")  # fmt: skip
        taken.setdefault((proto, address), key)
    if live:
        for key, address, proto in _service_ports(config):
            problem = _port_problem(address, proto)
            if problem:
                found.append(f"{where}: {key}: {problem}: {WITHOUT}")
    if config.console is not None:
        problem = _users_problem(config)
        if problem:
            found.append(f"{where}: console.users_file: {problem}: the console would let no "
                         "one log in")  # fmt: skip
    subscribers = config.subscribers
    if subscribers is not None:
        if subscribers.radius is not None:
            problem = _secret_problem(subscribers.radius.secret_file)
            if problem:
                found.append(f"{where}: subscribers.radius.secret_file: {problem}: {WITHOUT}")
        if subscribers.store.startswith("file:"):
            problem = _file_store_problem(subscribers.store)
            if problem:
                found.append(f"{where}: subscribers.store: {problem}: serve would start "
                             "with no subscriber bindings")  # fmt: skip
    return found


def _service_ports(config: Config) -> list[tuple[str, Listener, str]]:
    """(key, address, UDP or TCP) of every listener beside DNS that serve would open."""
    from .settings import parse_address

    ports = []
    if config.metrics_listen:
        metrics = parse_address(config.metrics_listen)
        ports.append(("metrics.listen", Listener(metrics.host, metrics.port), "TCP"))
    console = config.console
    if console is not None:
        ports.append(("console.listen", Listener(console.host, console.port), "TCP"))
        block = Listener(console.blockpage_host, console.blockpage_port)
        ports.append(("console.blockpage_listen", block, "TCP"))
    radius = config.subscribers.radius if config.subscribers is not None else None
    if radius is not None:
        ports.append(("subscribers.radius.listen", Listener(radius.host, radius.port), "UDP"))
    return ports


def _port_problem(address: Listener, proto: str) -> str | None:
    if address.port == 0:
        return None  # any free port: nothing to check
    failed = bind_error(address, udp=proto == "UDP", tcp=proto == "TCP")
    if failed is None:
        return None
    exc = failed[1]
    if exc.errno == errno.EACCES:
        return None  # a privileged port: the systemd unit grants it (see preflight's note)
    if exc.errno == errno.EADDRINUSE:
        return f"{address} ({proto}) is already in use"
    return f"cannot listen on {address} ({proto}): {exc.strerror}"


def _secret_problem(path: Path) -> str | None:
    from .subscribers.radius import read_secret

    try:
        read_secret(path)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    except ValueError as exc:
        return str(exc)
    return None


def _file_store_problem(store: str) -> str | None:
    from .subscribers.store import open_store

    try:
        open_store(store).load()  # a missing file is an empty store, created at the first set
    except LachanError as exc:
        return str(exc)
    return None


def _users_problem(config: Config) -> str | None:
    from .console.accounts import read_users
    from .console.settings import users_path

    try:
        read_users(users_path(config.console, config.lists.state_dir))
    except LachanError as exc:  # "PATH: console.users_file: why": the key is said once
        return str(exc).replace(": console.users_file", "", 1)
    return None
