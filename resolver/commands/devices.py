"""``lachan devices add``: register a device ID and print how to set the device up."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from .. import config
from ..device_setup import add_to_config, mobileconfig, setup_for
from ..errors import ConfigError, LachanError
from ..state import load_policies

DEFAULT = "/etc/lachan/lachan.yaml"


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


@click.group()
def devices() -> None:
    """Device IDs of the encrypted listeners (DoT, DoH): one profile per device."""


@devices.command("add")
@click.argument("name")
@click.option("--profile", "profile", required=True, help="Profile for this device (under16…).")
@click.option(
    "--config", "path", default=DEFAULT, show_default=True, type=click.Path(dir_okay=False)
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write the Apple profile (default: NAME.mobileconfig here).",
)
def add(name: str, profile: str, path: str, output: str | None) -> None:
    """Add NAME to the config's devices; print its hostname and URL; write a .mobileconfig."""
    name = name.lower()
    try:
        cfg = config.load(path)
        profiles, _, _ = load_policies(cfg)
    except LachanError as exc:
        _fail("\n".join(exc.problems) if isinstance(exc, ConfigError) else str(exc))
    settings = cfg.encrypted
    if not settings.tls.server_name:
        _fail(f"{path}: tls.server_name: needed for device IDs (e.g. dns.example.vn)")
    if name in settings.devices:
        _fail(f"{path}: devices.{name}: already set (profile {settings.devices[name]})")
    if profile not in profiles:
        _fail(f"--profile {profile}: no such profile (known: {', '.join(sorted(profiles))})")
    setup = setup_for(name, settings)
    target = Path(output or f"{name}.mobileconfig")
    try:  # first: a profile that cannot be written must not leave the device half-added
        target.write_bytes(mobileconfig(setup))
    except OSError as exc:
        _fail(f"--output {target}: cannot write: {exc.strerror}")
    try:
        _write_device(Path(path), name, profile)
    except click.ClickException:
        target.unlink(missing_ok=True)  # no profile for a device the config does not have
        raise
    click.echo(f"Thiết bị / device: {name} -> {profile} (in {path}; send SIGHUP to apply)")
    click.echo(f"Android Private DNS: {setup.private_dns}")
    click.echo(f"DoH URL: {setup.doh_url}")
    click.echo(f"iPhone/iPad/Mac: {target}")


def _write_device(path: Path, name: str, profile: str) -> None:
    """Add the line, and keep the change only if the config still reads with it."""
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(add_to_config(original, name, profile), encoding="utf-8")
        if config.load(path).encrypted.devices.get(name) != profile:
            raise ValueError("the new line did not read back as expected")
    except (ValueError, LachanError, OSError) as exc:
        path.write_text(original, encoding="utf-8")
        why = exc.strerror if isinstance(exc, OSError) else exc
        _fail(f"{path}: devices: not changed: {why}")
