"""The encrypted-listener part of `lachan check-config`: devices, key, names, expiry.

`lachan serve` imports this module too: the TLS checks (cryptography's x509, ctypes) are
imported only when the config has encrypted listeners, not at every start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import click

from ..config import Config
from ..encrypted_config import check_profiles
from ..errors import ConfigError


def check_encrypted(cfg: Config, profiles: Mapping[str, object], now: float | None = None) -> None:
    """Raise ConfigError with one line per problem; print warnings (expiry soon) to stderr."""
    settings = cfg.encrypted
    check_profiles(settings, profiles, cfg.source)
    if not settings.enabled:
        return
    from ..tls_check import check

    report = check(settings, cfg.source, time.time() if now is None else now)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if report.problems:
        raise ConfigError(list(report.problems))


def preflight_encrypted(cfg: Config, profiles: Mapping[str, object], flags: bool = False) -> None:
    """What `lachan serve` must refuse before binding: unknown profiles, unloadable TLS files
    (``flags``: the files came from --tls-cert/--tls-key, so the problem names them)."""
    settings = cfg.encrypted
    check_profiles(settings, profiles, cfg.source)
    if settings.enabled and settings.tls.cert is not None and settings.tls.key is not None:
        from ..transport.tls import ALPN_DOT, load_context

        try:
            load_context(settings.tls.cert, settings.tls.key, ALPN_DOT)
        except ConfigError as exc:
            if flags:
                raise ConfigError(
                    f"--tls-cert/--tls-key: {str(exc).removeprefix('tls: ')}"
                ) from None
            raise ConfigError(f"{cfg.source}: {exc}") from None
