"""`lachan serve` and `lachan check-config`."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

from .. import compose, config, config_source, preflight, preflight_services
from ..errors import ConfigError, LachanError
from ..state import load_policies
from ..transport.pktinfo import mapping_problems
from .tls_config import check_encrypted, preflight_encrypted


def _fail(error: LachanError, status: int = 1) -> NoReturn:
    problems = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in problems:
        click.echo(line, err=True)
    sys.exit(status)


def _preflight(
    cfg: config.Config, live: bool, catalogue: bool = True, flags: tuple[str, ...] = ()
) -> None:
    """Raise ConfigError with every problem `serve` would die of; notes go to stderr."""
    found = preflight.check(cfg, live, catalogue, flags)
    for note in found.notes:
        click.echo(f"note: {note}", err=True)
    if found.problems:
        raise ConfigError(found.problems)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(),  # a folder or broken link: config.load's one line, not a usage error
    help="YAML config file (default: the embedded default).",
)
@click.option(
    "--listen",
    multiple=True,
    metavar="HOST:PORT",
    help="Listen here instead of the config's listeners (repeatable; IPv6 as [ADDR]:PORT).",
)
@click.option(
    "--upstream",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Forward here instead of the config's upstreams (repeatable; IPv6 in brackets).",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 256),  # as the config's workers: key
    default=None,
    help="Worker processes sharing the ports (0: one per CPU). Default: the config's, else 1.",
)
@click.option(
    "--listen-tls",
    multiple=True,
    metavar="HOST:PORT",
    help="Serve DNS over TLS here (repeatable; IPv6 as [ADDR]:PORT; needs --tls-cert/--tls-key).",
)
@click.option(
    "--listen-https",
    multiple=True,
    metavar="HOST:PORT",
    help="Serve DNS over HTTPS (/dns-query) here (repeatable; IPv6 as [ADDR]:PORT).",
)
@click.option(
    "--tls-cert", metavar="FILE", help="PEM certificate chain for --listen-tls and --listen-https."
)
@click.option("--tls-key", metavar="FILE", help="PEM private key of --tls-cert.")
@click.option(
    "--log-level",
    default="info",
    type=click.Choice(["debug", "info", "warning", "error"]),
    show_default=True,
)
def serve(
    config_path: str | None,
    listen: tuple[str, ...],
    upstream: tuple[str, ...],
    workers: int | None,
    listen_tls: tuple[str, ...],
    listen_https: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
    log_level: str,
) -> None:
    """Run the resolver (the embedded default: 127.0.0.1:1053 and [::1]:1053)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tls_flags = (listen_tls, listen_https, tls_cert, tls_key)
    load = config_source.ConfigSource(config_path, listen, upstream, workers, tls_flags)
    try:
        cfg = load()
        policies = load_policies(cfg)  # fail fast on a bad profile, before binding
        profiles, clients, _ = policies
        preflight_encrypted(cfg, profiles, flags=bool(tls_cert or tls_key))  # devices, TLS
        for problem in mapping_problems(cfg.listeners, clients, cfg.source):
            logging.getLogger(__name__).warning("%s (this profile never applies)", problem)
        # build_state reads the catalogue (with the same one-line error): not parsed twice
        given = {"listen": listen, "listen_tls": listen_tls, "listen_https": listen_https}
        flags = tuple(key for key, values in given.items() if values)  # problems name flags
        _preflight(cfg, live=True, catalogue=False, flags=flags)
    except LachanError as exc:
        _fail(exc, 2)  # an operator's mistake: one line each, and systemd's "bad config" status
    try:
        compose.run(cfg, load, policies)  # one process, or a supervisor and its workers
    except LachanError as exc:  # what the checks above could not foresee, e.g. a race
        _fail(exc, 2)
    except OSError as exc:
        click.echo(f"lachan: cannot serve: {exc}", err=True)
        sys.exit(2)


@click.command("check-config")
@click.argument("path", type=click.Path())  # a folder: "PATH: cannot read", exit 1
@click.option(
    "--files-only",
    is_flag=True,
    help="Skip the live checks (ports free, ledger not locked): for a config to reload "
    "into a server that is already running.",
)
def check_config(path: str, files_only: bool) -> None:
    """Validate a config file and what serving it needs: one line per problem, exit 1 if any.

    Checks the profiles, the catalogue, the audit key, the ledger's folder and last record, the
    query-log folder, the lists' state folder, and (unless --files-only) that there is an
    address to listen on, that the DNS, DoT and DoH ports are free and that the ledger is not
    locked by a running instance. What serve would run without (a busy metrics, console or
    RADIUS port, an unreadable RADIUS secret, console users or subscriber file; a TLS
    certificate that has expired or does not cover a name) is a warning.
    """
    try:
        cfg = config.load(path)
        profiles, clients, _ = load_policies(cfg, connect=False)  # no store connection
        problems = mapping_problems(cfg.listeners, clients, cfg.source)
        try:
            _preflight(cfg, live=not files_only)
        except ConfigError as exc:
            problems = [*problems, *exc.problems]
        if problems:  # a listener profile that can never apply is a silent hole
            raise ConfigError(problems)
        check_encrypted(cfg, profiles)  # devices' profiles, TLS key, names and expiry
    except LachanError as exc:
        _fail(exc)
    for warning in preflight_services.warnings(cfg, live=not files_only):
        click.echo(f"warning: {warning}", err=True)
    if cfg.audit.period < 60:
        click.echo(f"{path}: warning: audit.period {cfg.audit.period} s is below 60 s: "
                   "for tests and demonstrations only", err=True)  # fmt: skip
    click.echo(f"{path}: ok")
