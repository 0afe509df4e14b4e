"""``lachan explain``: which profile a client gets and what lachan would answer for a name."""

from __future__ import annotations

import dataclasses
import ipaddress
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from .. import config
from ..config import Config
from ..errors import ConfigError, LachanError
from ..lists.index import open_index
from ..policy.clients import ClientMap
from ..policy.decide import Lookup
from ..policy.explain import explain as explain_lines
from ..policy.explain import parse_qtype, parse_when
from ..policy.loader import normalise_name
from ..policy.profile import Profile
from ..state import load_index, load_policies


def _fail(error: LachanError | ValueError) -> NoReturn:
    """One line per problem and exit status 2: a mistake in what was asked, not a crash."""
    lines = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in lines:
        click.echo(f"lachan explain: {line}", err=True)
    sys.exit(2)


def _checked_inputs(name: str, args: dict[str, Any]) -> str:
    """The name as lachan would match it; ValueError naming the bad option otherwise."""
    for option in ("client", "listener", "ecs"):
        if args[option] is None:
            continue
        try:
            if option == "client":
                ipaddress.ip_address(args[option])
            elif option == "ecs":
                ipaddress.ip_network(args[option], strict=False)
            else:
                host, _, port = args[option].rpartition(":")
                ipaddress.ip_address(host.strip("[]"))
                if not port.isdigit() or int(port) > 65535:
                    raise ValueError
        except ValueError:
            raise ValueError(f"--{option}: not a valid address: {args[option]!r}") from None
    try:
        return normalise_name(name)
    except ValueError as exc:
        raise ValueError(f"NAME: {exc} (letters, digits, '-' and '_' between dots)") from None


def _load(args: dict[str, Any]) -> tuple[Config, dict[str, Profile], ClientMap]:
    """The running config's profiles and client map (``--policies`` overrides the dir)."""
    cfg = config.load(args["config"])
    if args["policies"]:
        if not Path(args["policies"]).is_dir():  # else blamed on the config's policies.dir
            raise ConfigError(f"--policies: folder {args['policies']} does not exist")
        cfg = dataclasses.replace(cfg, policies_dir=Path(args["policies"]))
    profiles, clients, _ = load_policies(cfg)
    return cfg, profiles, clients


def _choose(
    profiles: dict[str, Profile], clients: ClientMap, args: dict[str, Any]
) -> tuple[Profile, str]:
    if args["profile"]:
        if args["profile"] not in profiles:
            known = ", ".join(sorted(profiles))
            raise ConfigError(f"--profile: unknown profile {args['profile']!r} (known: {known})")
        return profiles[args["profile"]], "chosen with --profile"
    host, _, port = args["listener"].rpartition(":")
    listener = (str(ipaddress.ip_address(host.strip("[]"))), int(port))
    ecs = ipaddress.ip_network(args["ecs"], strict=False) if args["ecs"] else None
    return clients.explain(args["client"], listener, ecs)


def _lookup(cfg: Config, index: str | None) -> Lookup:
    """The index the server would use (compiled on first use), or the one given."""
    return open_index(index) if index else load_index(cfg)


@click.command()
@click.argument("name")
@click.option("--client", default="127.0.0.1", show_default=True, help="Client address.")
@click.option("--listener", default="127.0.0.1:53", show_default=True, help="ADDR:PORT asked.")
@click.option("--ecs", default=None, help="EDNS Client Subnet carried by the query (CIDR).")
@click.option(
    "--at", "at", default=None, help='Local time, e.g. "2026-12-01 22:00" (default: now).'
)
@click.option("--type", "qtype", default="A", show_default=True, help="Query type.")
@click.option(
    "--config",
    default=None,
    type=click.Path(dir_okay=False),
    help="lachan.yaml (default: the embedded default).",
)
@click.option("--policies", default=None, type=click.Path(file_okay=False), help="Profiles dir.")
@click.option("--profile", default=None, help="Use this profile whatever the client.")
@click.option(
    "--index",
    default=None,
    type=click.Path(dir_okay=False),
    help="Compiled index (default: the config's lists).",
)
def explain(name: str, **args: Any) -> None:
    """Explain what lachan would answer for NAME: profile, decision, rule, answer."""
    try:
        name = _checked_inputs(name, args)
        cfg, profiles, clients = _load(args)
        profile, why = _choose(profiles, clients, args)
        qtype = parse_qtype(args["qtype"])
        when = parse_when(args["at"], profile) if args["at"] else _now(profile)
        lines = explain_lines(profile, why, name, qtype, when, _lookup(cfg, args["index"]))
    except (LachanError, ValueError) as exc:
        _fail(exc)
    click.echo("\n".join(lines))


def _now(profile: Profile) -> datetime:
    return datetime.fromtimestamp(time.time(), profile.timezone)
