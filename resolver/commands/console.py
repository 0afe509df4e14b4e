"""``lachan console passwd USER``: set a console account's password and role."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from .. import config
from ..console.accounts import ROLES, AccountError, set_password
from ..console.settings import users_path
from ..errors import LachanError


def _fail(message: str) -> NoReturn:
    click.echo(f"lachan console: {message}", err=True)
    raise SystemExit(2)


def _read_password() -> str:
    """From the prompt on a terminal (asked twice), else the first line of stdin."""
    if sys.stdin.isatty():
        text: str = click.prompt("password", hide_input=True, confirmation_prompt=True)
        return text
    return sys.stdin.readline().rstrip("\r\n")


@click.group("console")
def console() -> None:
    """The school's web console (see console: in the config)."""


@console.command("passwd")
@click.argument("user")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="admin",
    show_default=True,
    help="teacher: may only open sites for a while; admin: may also allow for good.",
)
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="lachan.yaml (default: the embedded default).")  # fmt: skip
def passwd(user: str, role: str, config_path: str | None) -> None:
    """Set USER's password (read from stdin, or asked twice on a terminal)."""
    try:
        cfg = config.load(config_path)
        path = users_path(cfg.console, cfg.lists.state_dir)
        set_password(path, user, _read_password(), role)
    except (AccountError, LachanError) as exc:
        _fail(str(exc))
    click.echo(f"{user} ({role}) saved in {path}")
