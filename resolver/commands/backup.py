"""`lachan backup FILE` and `lachan restore FILE`: keep what a site cannot download again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from .. import config
from ..backup import backup_items, restore_backup, write_backup
from ..errors import ConfigError, LachanError

_CONFIG = click.option(
    "--config", "config_path", default="/etc/lachan/lachan.yaml", show_default=True,
    type=click.Path(dir_okay=False), help="The config whose files are saved.",
)  # fmt: skip


def _fail(error: LachanError) -> NoReturn:
    problems = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in problems:
        click.echo(f"error: {line}", err=True)
    sys.exit(2)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@_CONFIG
def backup(file: str, config_path: str) -> None:
    """Save the config, audit keys, ledger and local overrides it names into FILE (tar.gz)."""
    try:
        path = Path(config_path).absolute()
        items = backup_items(path, config.load(path))
        saved = write_backup(Path(file), items)
    except LachanError as error:
        _fail(error)
    for item in items:
        state = "saved" if item in saved else "absent, not saved"
        click.echo(f"{item.role:17} {item.path}  {state}")
    click.echo(f"wrote {file} (mode 0600: it holds the audit key; keep it offline and safe)")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace files that already exist.")
def restore(file: str, force: bool) -> None:
    """Put the files saved in FILE back where they were; refuses to overwrite without --force."""
    try:
        items = restore_backup(Path(file), force=force)
    except LachanError as error:
        _fail(error)
    for item in items:
        click.echo(f"{item.role:17} {item.path}  restored")
