"""The site registry: which schools and ISPs must be covered, their keys and resolver addresses."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resolver import yamlsafe
from resolver.audit.keys import load_public_key
from resolver.audit.label import LABEL
from resolver.errors import ConfigError, LachanError

KINDS = ("school", "isp")
_KEYS = {"id", "name", "kind", "commune", "public_key", "instances", "resolver", "district"}


@dataclass(frozen=True, slots=True)
class Site:
    """One registered site."""

    id: str
    name: str
    kind: str
    commune: str
    public_key: Ed25519PublicKey | None
    instances: int
    resolver: tuple[str, int] | None  # (address, port) to probe
    district: str = ""  # the province's collector groups coverage by district, then commune


def parse_address(text: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or ``[::1]:5353`` to ``(address, port)``."""
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    ipaddress.ip_address(host)  # ValueError if not an IP literal: probes never resolve names
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r}")
    return host, int(port)


def _site(entry: Any, where: str, base: Path) -> Site:
    if not isinstance(entry, dict):
        raise LachanError(f"{where}: expected a mapping")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise LachanError(f"{where}: unknown keys {unknown}")
    site_id = entry.get("id")
    if site_id is None:
        raise LachanError(f"{where}.id: missing (lower-case [a-z0-9_-])")
    if not isinstance(site_id, str) or not LABEL.fullmatch(site_id):
        raise LachanError(f"{where}.id: {site_id!r} must be lower-case [a-z0-9_-]")
    if entry.get("kind") is None:
        raise LachanError(f"{where}.kind: missing (school or isp)")
    if entry.get("kind") not in KINDS:
        raise LachanError(f"{where}.kind: {entry.get('kind')!r} must be school or isp")
    instances = entry.get("instances", 1)
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise LachanError(f"{where}.instances: must be a whole number >= 1")
    key = entry.get("public_key")
    try:
        public = load_public_key(str(key), base) if key else None
    except LachanError as exc:
        raise LachanError(f"{where}.public_key: {exc}") from None
    try:
        resolver = parse_address(str(entry["resolver"])) if entry.get("resolver") else None
    except ValueError as exc:
        raise LachanError(f"{where}.resolver: {entry['resolver']!r}: {exc}") from None
    return Site(site_id, str(entry.get("name", site_id)), entry["kind"],
                str(entry.get("commune", "")), public, instances, resolver,
                str(entry.get("district", "")))  # fmt: skip


def load_registry(path: Path) -> tuple[Site, ...]:
    """Read and check the registry; every problem is reported as ``file: sites[i].key: why``."""
    try:
        doc = yamlsafe.load_unique(yamlsafe.read_text(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {yamlsafe.problem(exc)}") from None
    except ValueError as exc:  # not UTF-8
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sites"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'sites' list")
    sites, problems, seen = [], [], set()
    for i, entry in enumerate(doc["sites"]):
        try:
            site = _site(entry, f"sites[{i}]", path.parent)
        except LachanError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if site.id in seen:
            problems.append(f"{path}: sites[{i}].id: {site.id} is registered twice")
        seen.add(site.id)
        sites.append(site)
    if problems:
        raise ConfigError(problems)
    return tuple(sites)
