"""The encrypted-listener part of `lachan check-config`: devices, key, names, expiry."""

from __future__ import annotations

import time
from collections.abc import Mapping

import click

from ..config import Config
from ..encrypted_config import check_profiles
from ..errors import ConfigError
from ..tls_check import check


def check_encrypted(cfg: Config, profiles: Mapping[str, object], now: float | None = None) -> None:
    """Raise ConfigError with one line per problem; print warnings (expiry soon) to stderr."""
    settings = cfg.encrypted
    check_profiles(settings, profiles, cfg.source)
    if not settings.enabled:
        return
    report = check(settings, cfg.source, time.time() if now is None else now)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if report.problems:
        raise ConfigError(list(report.problems))
