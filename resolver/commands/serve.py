"""`lachan serve` and `lachan check-config`."""

from __future__ import annotations

import logging
import sys

import click

from .. import app, config
from ..errors import ConfigError, LachanError
from ..state import load_policies


def _fail(error: LachanError) -> None:
    problems = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in problems:
        click.echo(line, err=True)
    sys.exit(1)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
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
    type=int,
    default=None,
    help="Worker processes sharing the ports (0: one per CPU). Default: the config's, else 1.",
)
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
    log_level: str,
) -> None:
    """Run the resolver (the embedded default: 127.0.0.1:1053 and [::1]:1053)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    load = config.ConfigSource(config_path, listen, upstream, workers)
    try:
        cfg = load()
        load_policies(cfg)  # fail fast on a bad profile, before binding anything
    except LachanError as exc:
        _fail(exc)
    try:
        if cfg.workers > 1:
            from ..supervisor import run_supervised  # only with workers: saves startup

            run_supervised(cfg, load, cfg.workers)
        else:
            app.run(cfg, load)
    except OSError as exc:
        click.echo(f"lachan: cannot serve: {exc}", err=True)
        sys.exit(1)


@click.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False))
def check_config(path: str) -> None:
    """Validate a config file: one line per problem, exit 1 if any."""
    try:
        load_policies(config.load(path), connect=False)
    except LachanError as exc:
        _fail(exc)
    click.echo(f"{path}: ok")
