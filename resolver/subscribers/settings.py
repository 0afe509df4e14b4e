"""The ``subscribers:`` config section: where the store is, the default profile, RADIUS."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..config_read import Reader, split_host_port

ID_ATTRIBUTES = ("User-Name", "Class", "Calling-Station-Id")


@dataclass(frozen=True, slots=True)
class RadiusSettings:
    """The RADIUS accounting listener (RFC 2866): who may send, and with which secret."""

    host: str
    port: int
    secret_file: Path
    nas: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    id_attribute: str = "User-Name"


@dataclass(frozen=True, slots=True)
class SubscriberSettings:
    """``store`` is ``redis://…`` or ``file:/path.json``; ``default`` names a profile."""

    store: str
    default: str = "isp-default"
    radius: RadiusSettings | None = None


def subscribers_config(node: Reader, base: Path) -> SubscriberSettings:
    """The section's settings; problems go to ``node``'s list."""
    node.reject_unknown({"store", "default", "radius"})
    store = node.get("store", "", str)
    if not store:
        node.problem("missing (redis://HOST:PORT/DB or file:/path.json)", node.child_path("store"))
    elif store.startswith("file:"):
        store = "file:" + str(base / Path(store[5:]).expanduser())
    elif not store.startswith(("redis://", "rediss://", "unix://")):
        node.problem(
            f"must start with redis://, rediss://, unix:// or file:, not {store!r}",
            node.child_path("store"),
        )
    elif store.startswith(("redis://", "rediss://")) and (problem := _redis_url_problem(store)):
        node.problem(problem, node.child_path("store"))
    default = node.get("default", "isp-default", str)
    radius = _radius(node.section("radius"), base) if node.has("radius") else None
    return SubscriberSettings(store, default, radius)


def _redis_url_problem(url: str) -> str | None:
    """What redis-py would trip on when it first connects (a traceback in serve), or would
    quietly read otherwise (a database name that is not a number: database 0)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is the check (ValueError out of range)
    except ValueError as exc:
        return f"not a valid URL ({exc}): {url!r}"
    if not parts.hostname:
        return f"no host in {url!r} (redis://HOST:PORT/DB)"
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"the database {db!r} is not a number (redis://HOST:PORT/DB)"
    return None


def _radius(node: Reader, base: Path) -> RadiusSettings | None:
    node.reject_unknown({"listen", "secret_file", "nas", "id_attribute"})
    listen = node.get("listen", "0.0.0.0:1813", str)
    try:
        host, port = split_host_port(listen, 1813)
    except ValueError as exc:
        node.problem(str(exc), node.child_path("listen"))
        host, port = "0.0.0.0", 1813
    secret = node.get("secret_file", "", str)
    if not secret:
        node.problem("missing (a file holding the shared secret)", node.child_path("secret_file"))
    nas = []
    for item in node.items("nas"):
        try:
            nas.append(ipaddress.ip_network(str(item.value), strict=False))
        except ValueError as exc:
            item.problem(str(exc))
    if not nas:
        node.problem("must list the NAS/BNG addresses allowed to send", node.child_path("nas"))
    attribute = node.get("id_attribute", "User-Name", str)
    if attribute not in ID_ATTRIBUTES:
        node.problem(f"must be one of {', '.join(ID_ATTRIBUTES)}", node.child_path("id_attribute"))
    return RadiusSettings(host, port, base / Path(secret).expanduser(), tuple(nas), attribute)
