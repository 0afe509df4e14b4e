"""``lachan allow``: open a site for a profile for a while, list the allows, revoke one."""

from __future__ import annotations

import getpass
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

import click

from .. import config
from ..allows import (
    AllowError,
    AllowStore,
    normalise_site,
    parse_duration,
    without_allows,
)
from ..config import Config
from ..console.settings import never_categories
from ..errors import LachanError
from ..policy.decide import decide
from ..policy.decision import Block
from ..policy.profile import Profile
from ..settings import default_state_dir
from ..state import load_index, load_policies

_TYPE_A = 1


def _fail(message: str) -> NoReturn:
    click.echo(f"lachan allow: {message}", err=True)
    raise SystemExit(2)


def _store(cfg: Config) -> AllowStore:
    return AllowStore(Path(cfg.lists.state_dir or default_state_dir()))


def blocking_category(profile: Profile, name: str, cfg: Config) -> str:
    """The category that blocks ``name`` for ``profile`` now, temporary allows aside ("" when
    nothing blocks it)."""
    decision = decide(without_allows(profile), name, _TYPE_A, time.time(), load_index(cfg))
    return decision.category if isinstance(decision, Block) else ""


def refusal(category: str, name: str, never: frozenset[str]) -> str | None:
    """Why ``name``, blocked as ``category``, may not be opened (a never-allowed one), or None."""
    if category in never:
        return (
            f"{name} is blocked as {category}, which can never be opened temporarily "
            "(change the profile instead)"
        )
    return None


def _grant(cfg: Config, name: str, duration: str, profile_name: str, reason: str) -> None:
    profiles, _, _ = load_policies(cfg)
    if profile_name not in profiles:
        known = ", ".join(sorted(profiles))
        raise AllowError(f"--profile: unknown profile {profile_name!r} (known: {known})")
    seconds = parse_duration(duration)
    site = normalise_site(name)
    category = blocking_category(profiles[profile_name], site, cfg)
    why_not = refusal(category, site, never_categories(cfg.console))
    if why_not:
        raise AllowError(why_not)
    allow = _store(cfg).add(site, profile_name, seconds, reason, getpass.getuser(), category)
    until = datetime.fromtimestamp(allow.until, profiles[profile_name].timezone)
    click.echo(
        f"allowed {site} and its subdomains for {profile_name} until {until:%Y-%m-%d %H:%M %Z}"
    )


def _list(cfg: Config) -> None:
    allows = _store(cfg).in_force()
    if not allows:
        click.echo("no temporary allows in force")
    for a in sorted(allows, key=lambda a: a.until):
        until = datetime.fromtimestamp(a.until, ZoneInfo(cfg.site.timezone))  # the site's clock
        click.echo(f"{a.name}\t{a.profile}\tuntil {until:%Y-%m-%d %H:%M %Z}\tby {a.by}\t{a.reason}")


def _revoke(cfg: Config, name: str, profile: str | None) -> None:
    gone = _store(cfg).revoke(normalise_site(name), profile, getpass.getuser())
    if not gone:
        raise AllowError(f"no temporary allow for {name}")
    click.echo(f"revoked {name} for {', '.join(sorted(a.profile for a in gone))}")


@click.command("allow")
@click.argument("name", required=False)
@click.option("--for", "duration", default=None, help="How long: 30m to 7d (e.g. 2h).")
@click.option("--profile", default=None, help="The profile the site is opened for.")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.option("--list", "listing", is_flag=True, help="List the allows in force.")
@click.option("--revoke", "revoke", default=None, metavar="NAME", help="End an allow now.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="lachan.yaml (default: the embedded default).")  # fmt: skip
def allow(
    name: str | None,
    duration: str | None,
    profile: str | None,
    reason: str,
    listing: bool,
    revoke: str | None,
    config_path: str | None,
) -> None:
    """Open NAME and its subdomains for a profile for a while (30 min to 7 days).

    Running servers apply it within a second, on every worker, and drop it when it ends.
    """
    try:
        cfg = config.load(config_path)
        if listing:
            _list(cfg)
        elif revoke:
            _revoke(cfg, revoke, profile)
        elif name and duration and profile:
            _grant(cfg, name, duration, profile, reason)
        else:
            raise AllowError(
                "give NAME --for DURATION --profile P --reason TEXT, --list or --revoke NAME"
            )
    except (AllowError, LachanError) as exc:
        _fail(str(exc))
