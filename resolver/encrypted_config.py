"""Settings of the encrypted listeners (DoT, DoH), TLS files and device IDs, read from config."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_read import Reader, split_host_port
from .errors import ConfigError

# A device ID is one DNS label (it is the first label of a TLS server name): letters, digits,
# hyphens, not at either end; lower case, since server names compare case-insensitively.
DEVICE_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
KEYS = {"listen_tls", "listen_https", "tls", "devices", "require_device_id"}


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path | None = None  # PEM chain, leaf first (certbot's fullchain.pem)
    key: Path | None = None
    server_name: str = ""  # device IDs are read from ID.<server_name>


@dataclass(frozen=True, slots=True)
class EncryptedSettings:
    """DoT and DoH listeners, their certificate, and the device ID -> profile map."""

    listen_tls: tuple[tuple[str, int], ...] = ()
    listen_https: tuple[tuple[str, int], ...] = ()
    tls: TlsFiles = TlsFiles()
    devices: dict[str, str] = field(default_factory=dict, compare=False)
    require_device_id: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.listen_tls or self.listen_https)


def read(root: Reader, base: Path) -> EncryptedSettings:
    """The encrypted-listener keys of a config's top level."""
    settings = EncryptedSettings(
        listen_tls=_addresses(root, "listen_tls"),
        listen_https=_addresses(root, "listen_https"),
        tls=_tls(root.section("tls"), base),
        devices=_devices(root.section("devices")),
        require_device_id=root.get("require_device_id", False, bool),
    )
    if settings.enabled and (settings.tls.cert is None or settings.tls.key is None):
        root.problem("listen_tls/listen_https need tls.cert and tls.key", "tls")
    return settings


def _addresses(root: Reader, key: str) -> tuple[tuple[str, int], ...]:
    found = []
    for item in root.items(key):
        if not isinstance(item.value, str):
            item.problem("must be a string HOST:PORT (IPv6 as [ADDR]:PORT)")
            continue
        try:
            found.append(split_host_port(item.value, None))
        except ValueError as exc:
            item.problem(str(exc))
    return tuple(found)


def _tls(node: Reader, base: Path) -> TlsFiles:
    node.reject_unknown({"cert", "key", "server_name"})
    cert, key = node.get("cert", "", str), node.get("key", "", str)
    name = node.get("server_name", "", str).strip().rstrip(".").lower()
    return TlsFiles(base / cert if cert else None, base / key if key else None, name)


def _devices(node: Reader) -> dict[str, str]:
    devices = {}
    for name, profile in node.value.items():
        path = node.child_path(str(name))
        if not isinstance(name, str) or not DEVICE_ID.match(name):
            node.problem("a device ID is one lower-case DNS label (a-z, 0-9, -)", path)
        elif not isinstance(profile, str) or not profile:
            node.problem("must name a profile", path)
        else:
            devices[name] = profile
    return devices


def check_profiles(
    settings: EncryptedSettings, profiles: Mapping[str, object], source: str
) -> None:
    """Every device names a loaded profile (one line per problem otherwise)."""
    missing = [
        f"{source}: devices.{device}: no such profile: {profile!r}"
        for device, profile in settings.devices.items()
        if profile not in profiles
    ]
    if missing:
        raise ConfigError(missing)


def with_flags(
    settings: EncryptedSettings,
    listen_tls: tuple[str, ...] = (),
    listen_https: tuple[str, ...] = (),
    cert: str | None = None,
    key: str | None = None,
) -> EncryptedSettings:
    """Apply ``--listen-tls``, ``--listen-https``, ``--tls-cert`` and ``--tls-key``."""
    problems: list[str] = []
    changes: dict[str, Any] = {}
    for flag, values, name in (
        ("--listen-tls", listen_tls, "listen_tls"),
        ("--listen-https", listen_https, "listen_https"),
    ):
        parsed = []
        for value in values:
            try:
                parsed.append(split_host_port(value, None))
            except ValueError as exc:
                problems.append(f"{flag} {value}: {exc}")
        if parsed:
            changes[name] = tuple(parsed)
    tls = settings.tls
    if cert:
        tls = dataclasses.replace(tls, cert=Path(cert))
    if key:
        tls = dataclasses.replace(tls, key=Path(key))
    settings = dataclasses.replace(settings, tls=tls, **changes)
    if settings.enabled and (tls.cert is None or tls.key is None):
        problems.append("--listen-tls/--listen-https need --tls-cert and --tls-key (or tls:)")
    if problems:
        raise ConfigError(problems)
    return settings
