"""``lachan explain``: which profile a client gets and what lachan would answer for a name."""

from __future__ import annotations

import ipaddress
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from ..errors import ConfigError, LachanError
from ..policy.clients import ClientMap
from ..policy.decide import Lookup
from ..policy.explain import explain as explain_lines
from ..policy.explain import parse_qtype, parse_when
from ..policy.loader import load_profiles
from ..policy.profile import Profile

_SHIPPED = Path(__file__).resolve().parents[2] / "policies"


class _NoLists:
    """Stands in for the index when none is given: lists are not consulted."""

    def lookup(self, name: str) -> None:
        return None


def _fail(error: LachanError | ValueError) -> NoReturn:
    raise click.ClickException(str(error))


def _read_config(path: str | None) -> dict[str, Any]:
    # The core config does not carry ``policies`` and ``clients`` yet: read just those keys.
    if path is None:
        return {}
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return document


def _policies_dir(option: str | None, config: dict[str, Any]) -> Path:
    chosen = option or config.get("policies")
    if chosen:
        return Path(chosen)
    return Path("policies") if Path("policies").is_dir() else _SHIPPED


def _choose(
    profiles: dict[str, Profile], config: dict[str, Any], source: str, args: dict[str, Any]
) -> tuple[Profile, str]:
    if args["profile"]:
        if args["profile"] not in profiles:
            known = ", ".join(sorted(profiles))
            raise ConfigError(f"--profile: unknown profile {args['profile']!r} (known: {known})")
        return profiles[args["profile"]], "chosen with --profile"
    section = config.get("clients") or {"default": "under16"}
    cmap = ClientMap.from_config(section, profiles, source)
    host, _, port = args["listener"].rpartition(":")
    listener = (str(ipaddress.ip_address(host.strip("[]"))), int(port))
    ecs = ipaddress.ip_network(args["ecs"]) if args["ecs"] else None
    return cmap.explain(args["client"], listener, ecs)


def _lookup(index: str | None) -> Lookup:
    if index is None:
        return _NoLists()
    from ..lists.index import open_index

    return open_index(index)


@click.command()
@click.argument("name")
@click.option("--client", default="127.0.0.1", show_default=True, help="Client address.")
@click.option("--listener", default="127.0.0.1:53", show_default=True, help="ADDR:PORT asked.")
@click.option("--ecs", default=None, help="EDNS Client Subnet carried by the query (CIDR).")
@click.option(
    "--at", "at", default=None, help='Local time, e.g. "2026-12-01 22:00" (default: now).'
)
@click.option("--type", "qtype", default="A", show_default=True, help="Query type.")
@click.option("--config", default=None, type=click.Path(dir_okay=False), help="lachan.yaml.")
@click.option("--policies", default=None, type=click.Path(file_okay=False), help="Profiles dir.")
@click.option("--profile", default=None, help="Use this profile whatever the client.")
@click.option("--index", default=None, type=click.Path(dir_okay=False), help="Compiled index.")
def explain(name: str, **args: Any) -> None:
    """Explain what lachan would answer for NAME: profile, decision, rule, answer."""
    try:
        config = _read_config(args["config"])
        profiles = load_profiles(_policies_dir(args["policies"], config))
        profile, why = _choose(profiles, config, args["config"] or "clients", args)
        qtype = parse_qtype(args["qtype"])
        when = parse_when(args["at"], profile) if args["at"] else _now(profile)
        lines = explain_lines(profile, why, name, qtype, when, _lookup(args["index"]))
    except (LachanError, ValueError) as exc:
        _fail(exc)
    click.echo("\n".join(lines))


def _now(profile: Profile) -> datetime:
    return datetime.fromtimestamp(time.time(), profile.timezone)


commands = [explain]
