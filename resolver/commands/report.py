"""`lachan report push`: a site sends its signed ledger to the province's collector."""

from __future__ import annotations

import sys

import click
import requests

from .. import config
from ..errors import ConfigError, LachanError


@click.group()
def report() -> None:
    """Report this site's signed ledger to the province's collector."""


@report.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="lachan.yaml: site.id and audit.ledger (and audit.collector).")  # fmt: skip
@click.option("--collector", metavar="URL",
              help="The collector's base URL (default: audit.collector).")  # fmt: skip
def push(config_path: str | None, collector: str | None) -> None:
    """Send the ledger records the collector has not acknowledged; safe to run again."""
    from ..report_push import push as do_push
    from ..report_push import session

    name = config_path or "the embedded default config"
    try:
        cfg = config.load(config_path)
        url = collector or cfg.audit.collector
        if cfg.audit.ledger is None:
            raise ConfigError(f"{name}: audit.ledger: not set, nothing to push")
        if not url:
            raise ConfigError(f"{name}: audit.collector: not set (or give --collector URL)")
        outcome = do_push(cfg.audit.ledger, cfg.site.id, url, session())
    except requests.RequestException as exc:
        click.echo(f"error: cannot reach the collector: {exc}", err=True)
        sys.exit(1)
    except LachanError as exc:
        for line in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    acks = ", ".join(f"{i} seq {s}" for i, s in sorted(outcome.acks.items())) or "nothing"
    click.echo(f"sent {outcome.sent} lines; the collector acknowledges {acks}")
    for line in outcome.rejected:
        click.echo(f"refused: {line}", err=True)
    sys.exit(1 if outcome.rejected else 0)
