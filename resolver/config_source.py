"""How the running config is (re)read: the file, command-line overrides, and upstreams taken
from /etc/resolv.conf (skipping lachan's own listeners)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from . import encrypted_config
from .config import Config, load
from .config_read import ip_address, split_host_port
from .errors import ConfigError
from .settings import Listener, UpstreamAddress

RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """How to (re)load the running config: the file plus command-line overrides.

    Picklable, so worker processes and reloads read the config exactly as the CLI did.
    """

    path: str | None = None
    listen: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    workers: int | None = None
    tls_flags: tuple[tuple[str, ...], tuple[str, ...], str | None, str | None] = (
        (),
        (),
        None,
        None,
    )

    def __call__(self) -> Config:
        config = with_overrides(load(self.path), self.listen, self.upstream)
        if self.tls_flags != ((), (), None, None):  # --listen-tls, --listen-https, --tls-*
            encrypted = encrypted_config.with_flags(config.encrypted, *self.tls_flags)
            config = dataclasses.replace(config, encrypted=encrypted)
        if self.workers is not None:
            config = dataclasses.replace(config, workers=self.workers or (os.cpu_count() or 1))
        return resolve_upstreams(config)


# -- command-line overrides and resolv.conf ----------------------------------------------
def with_overrides(config: Config, listen: tuple[str, ...], upstream: tuple[str, ...]) -> Config:
    """Apply ``--listen``/``--upstream`` flags; bad values raise ConfigError naming the flag."""
    problems: list[str] = []
    listeners = _parse_flag_values(listen, None, "--listen", problems)
    upstreams = _parse_flag_values(upstream, 53, "--upstream", problems)
    if problems:
        raise ConfigError(problems)
    if listeners:
        config = dataclasses.replace(config, listeners=tuple(Listener(h, p) for h, p in listeners))
    if upstreams:
        config = dataclasses.replace(
            config,
            upstreams=tuple(UpstreamAddress(h, p) for h, p in upstreams),
            upstreams_from_resolv_conf=False,
        )
    return config


def _parse_flag_values(
    values: tuple[str, ...], default_port: int | None, flag: str, problems: list[str]
) -> list[tuple[str, int]]:
    parsed = []
    for value in values:
        try:
            parsed.append(split_host_port(value, default_port))
        except ValueError as exc:
            problems.append(f"{flag} {value}: {exc}")
    return parsed


def resolve_upstreams(config: Config, resolv_conf: Path = RESOLV_CONF) -> Config:
    """Fill upstreams from resolv.conf when the config asks for it, skipping our own ears."""
    if not config.upstreams_from_resolv_conf:
        return config
    try:
        text = resolv_conf.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{resolv_conf}: cannot read: {exc.strerror or exc}") from None
    found = tuple(
        UpstreamAddress(host, 53)
        for host in nameservers(text)
        if not is_own_listener(host, 53, config.listeners)
    )
    if not found:
        raise ConfigError(
            f"{resolv_conf}: no usable nameserver (none listed, or all are lachan's own "
            "listeners); give upstreams in the config or --upstream HOST[:PORT]"
        )
    return dataclasses.replace(config, upstreams=found)


def nameservers(resolv_conf_text: str) -> list[str]:
    servers = []
    for line in resolv_conf_text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver" and not ip_address(fields[1]):
            servers.append(fields[1].split("%", 1)[0])
    return servers


def is_own_listener(host: str, port: int, listeners: tuple[Listener, ...]) -> bool:
    """Whether a query sent to host:port would reach one of these listeners (0.0.0.0 and ::
    receive what is sent to loopback)."""
    address = ipaddress.ip_address(host)
    for listener in listeners:
        if listener.port != port:
            continue
        ours = ipaddress.ip_address(listener.host)
        if ours == address or (
            ours.is_unspecified and (address.is_loopback or address.is_unspecified)
        ):
            return True
    return False
