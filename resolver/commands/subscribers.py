"""``lachan subscribers``: the ISP's opt-in list (set, unset, import) and who is where."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from .. import config
from ..config import Config
from ..errors import LachanError
from ..policy.loader import load_profiles
from ..state import BUNDLED_POLICIES
from ..subscribers.manage import bindings_of, check_id, check_profile, read_csv, where
from ..subscribers.store import SubscriberStore, open_store


def _fail(message: str) -> NoReturn:
    click.echo(f"lachan subscribers: {message}", err=True)
    raise SystemExit(2)


def _open(config_path: str | None) -> tuple[Config, SubscriberStore]:
    """The config (``--config`` after the subcommand, else before it) and its store."""
    if config_path is None:
        config_path = click.get_current_context().find_root().meta.get("lachan.subscribers")
    try:
        cfg = config.load(config_path)
    except LachanError as exc:
        _fail(str(exc))
    if cfg.subscribers is None:
        _fail(f"{cfg.source}: subscribers: missing (add store: and default:, see the ISP guide)")
    return cfg, open_store(cfg.subscribers.store)


def _profiles(cfg: Config) -> set[str]:
    return set(load_profiles(cfg.policies_dir or BUNDLED_POLICIES, cfg.site.timezone))


_config_option = click.option(
    "--config", "config_path", default=None, type=click.Path(dir_okay=False),
    help="lachan.yaml with a subscribers: section.",
)  # fmt: skip


@click.group()
@_config_option
@click.pass_context
def subscribers(ctx: click.Context, config_path: str | None) -> None:
    """Subscriber lines and their profiles (ISP subscriber mode)."""
    ctx.find_root().meta["lachan.subscribers"] = config_path


@subscribers.command("set")
@_config_option
@click.argument("subscriber")
@click.argument("profile")
def set_(config_path: str | None, subscriber: str, profile: str) -> None:
    """Give SUBSCRIBER the profile PROFILE (e.g. under16) on every host at once."""
    cfg, store = _open(config_path)
    try:
        store.set_profiles({check_id(subscriber): check_profile(profile, _profiles(cfg))})
    except LachanError as exc:
        _fail(str(exc))
    click.echo(f"{subscriber}: profile {profile}")


@subscribers.command()
@_config_option
@click.argument("subscriber")
def unset(config_path: str | None, subscriber: str) -> None:
    """Remove SUBSCRIBER's profile: its lines get subscribers.default again."""
    cfg, store = _open(config_path)
    try:
        store.set_profiles({check_id(subscriber): None})
    except LachanError as exc:
        _fail(str(exc))
    click.echo(f"{subscriber}: profile {cfg.subscribers.default} (default)")  # type: ignore[union-attr]


@subscribers.command("import")
@_config_option
@click.argument("csv_file", type=click.Path(dir_okay=False, exists=True))
def import_(config_path: str | None, csv_file: str) -> None:
    """Set many profiles from ID,PROFILE rows; running it twice changes nothing more."""
    cfg, store = _open(config_path)
    try:
        data = Path(csv_file).read_bytes()
    except OSError as exc:
        _fail(f"{csv_file}: cannot read: {exc.strerror}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # a sheet saved in a Windows code page
        line = data[: exc.start].count(b"\n") + 1
        _fail(f'{csv_file}:{line}: not UTF-8 text (save the sheet as "CSV UTF-8")')
    try:
        wanted = read_csv(text, csv_file, _profiles(cfg))
        current = store.load()[0]
        changed = {s: p for s, p in wanted.items() if current.get(s) != p}
        store.set_profiles(changed)
    except (LachanError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"{csv_file}: {len(wanted)} subscribers, {len(changed)} changed")


@subscribers.command()
@_config_option
@click.argument("subscriber")
def show(config_path: str | None, subscriber: str) -> None:
    """SUBSCRIBER's profile and the addresses bound to it now."""
    cfg, store = _open(config_path)
    try:
        profile = store.profile(check_id(subscriber))
        bound = bindings_of(store, subscriber)
    except LachanError as exc:
        _fail(str(exc))
    default = cfg.subscribers.default  # type: ignore[union-attr]
    click.echo(f"{subscriber}: profile {profile or default + ' (default)'}")
    for prefix, binding in bound:
        click.echo(f"  {prefix} (NAS {binding.nas})")


@subscribers.command("where")
@_config_option
@click.argument("ip")
def where_(config_path: str | None, ip: str) -> None:
    """Which subscriber and profile IP maps to now, and since when."""
    cfg, store = _open(config_path)
    settings = cfg.subscribers
    assert settings is not None
    try:
        click.echo(where(store, ip, settings.default, cfg.site.timezone))
    except LachanError as exc:
        _fail(str(exc))
