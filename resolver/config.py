"""The frozen configuration: loaded from YAML (or the embedded default), validated whole.

``load(path)`` returns a ``Config`` or raises ``ConfigError`` whose ``problems`` are one line
each (``lachan.yaml: upstreams[1].address: not an IP address: 'x'``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from . import encrypted_config, yamlsafe
from .config_lists import extra_sources, http_url
from .config_read import Reader, in_range, ip_address, one_of, split_host_port
from .console.settings import ConsoleSettings, console_settings
from .errors import ConfigError
from .settings import (  # noqa: F401 - importers read these from config too
    AuditSettings,
    CachePolicy,
    ForwardPolicy,
    Listener,
    ListsSettings,
    ServePolicy,
    Site,
    TcpPolicy,
    UpstreamAddress,
    parse_address,
)
from .settings_limits import (
    AclConfig,
    QueryLogConfig,
    RateLimitConfig,
    acl_config,
    ratelimit_config,
)

if TYPE_CHECKING:  # imported where used: `lachan serve` need not load what it is not asked for
    from .subscribers.settings import SubscriberSettings

DEFAULT_CONFIG = Path(__file__).with_name("data") / "default.yaml"


@dataclass(frozen=True, slots=True)
class Config:
    source: str
    site: Site = Site()
    listeners: tuple[Listener, ...] = ()
    upstreams: tuple[UpstreamAddress, ...] = ()
    upstreams_from_resolv_conf: bool = False
    forward: ForwardPolicy = ForwardPolicy()
    cache: CachePolicy = CachePolicy()
    serve: ServePolicy = ServePolicy()
    tcp: TcpPolicy = TcpPolicy()
    lists: ListsSettings = ListsSettings()
    policies_dir: Path | None = None
    clients: dict[str, Any] = field(default_factory=dict, compare=False)
    acl: AclConfig = AclConfig()
    ratelimit: RateLimitConfig | None = None
    metrics_listen: str | None = None
    querylog: QueryLogConfig | None = None
    audit: AuditSettings = AuditSettings()
    workers: int = 1
    encrypted: encrypted_config.EncryptedSettings = encrypted_config.EncryptedSettings()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    policies_local_dir: Path | None = None  # the site's overrides of the shipped profiles
    console: ConsoleSettings | None = None  # the school's web console and block page (off)
    subscribers: SubscriberSettings | None = None  # ISP subscriber mode (issue 15)


_TOP_LEVEL = {
    "site", "listen", "upstreams", "upstream", "cache", "server", "tcp", "lists", "policies",
    "clients", "acl", "ratelimit", "metrics", "querylog", "audit", "workers",
    "console",
    "subscribers",
}  # fmt: skip
_TOP_LEVEL |= encrypted_config.KEYS  # listen_tls, listen_https, tls, devices, require_device_id


def load(path: Path | str | None = None) -> Config:
    """Load and validate a config file (the embedded default when ``path`` is None)."""
    file = Path(path) if path is not None else DEFAULT_CONFIG
    name = str(path) if path is not None else "embedded default"
    try:
        text = yamlsafe.read_text(file)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return parse(text, name, file.parent if path is not None else None)


def parse(text: str, source: str, base: Path | None = None) -> Config:
    """Parse config text; relative paths in it are taken from ``base`` (the file's folder)."""
    base = base or Path.cwd()
    try:
        document = yamlsafe.load_unique(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {yamlsafe.problem(exc)}") from None
    problems: list[str] = []
    root = Reader(document if document is not None else {}, "", problems, source)
    if not isinstance(root.value, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    root.reject_unknown(_TOP_LEVEL)
    config = Config(
        source=source,
        site=_site(root.section("site")),
        listeners=_listeners(root),
        forward=_forward(_upstream_section(root)),
        cache=_cache(root.section("cache")),
        serve=_serve(root.section("server")),
        tcp=_tcp(root.section("tcp")),
        lists=_lists(root.section("lists"), base),
        policies_dir=_policies_dir(root.section("policies"), base),
        clients=root.section("clients").value,
        acl=_guarded(acl_config, root.value.get("acl"), source, problems, AclConfig()),
        ratelimit=_ratelimit(root, source, problems),
        metrics_listen=_metrics(root.section("metrics")),
        querylog=_querylog(root.section("querylog"), base, problems),
        audit=_audit(root.section("audit"), base),
        workers=root.get("workers", 1, int, in_range(0, 256)) or (os.cpu_count() or 1),
        raw=root.value,
        policies_local_dir=_path(root.section("policies"), "local_dir", base),
        encrypted=encrypted_config.read(root, base),
        console=console_settings(root.section("console"), base),
    )
    if root.has("subscribers"):  # the subscriber package is imported only when configured
        from .subscribers.settings import subscribers_config

        subscribers = subscribers_config(root.section("subscribers"), base)
        config = dataclasses.replace(config, subscribers=subscribers)
    upstreams, from_resolv = _upstreams(root)
    config = dataclasses.replace(
        config, upstreams=upstreams, upstreams_from_resolv_conf=from_resolv
    )
    if problems:
        raise ConfigError(problems)
    return config


def _site(node: Reader) -> Site:
    node.reject_unknown({"id", "kind", "timezone"})
    return Site(
        id=node.get("id", "lachan", str),
        kind=node.get("kind", "other", str, one_of("school", "isp", "other")),
        timezone=node.get("timezone", "Asia/Ho_Chi_Minh", str, _zone),
    )


def _zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r} (an IANA name such as Asia/Ho_Chi_Minh)"
    return None


def _listeners(root: Reader) -> tuple[Listener, ...]:
    listeners = []
    for item in root.items("listen"):
        if not isinstance(item.value, str):
            item.problem("must be a string HOST:PORT (IPv6 as [ADDR]:PORT)")
            continue
        try:
            host, port = split_host_port(item.value, None)
        except ValueError as exc:
            item.problem(str(exc))
            continue
        listeners.append(Listener(host, port))
    if not listeners and root.has("listen"):
        root.problem("must list at least one address", "listen")
    return tuple(listeners)


def _upstreams(root: Reader) -> tuple[tuple[UpstreamAddress, ...], bool]:
    if root.get("upstreams", None, (str, list)) == "resolv.conf":
        return (), True
    addresses = []
    for item in root.items("upstreams") if isinstance(root.value.get("upstreams"), list) else ():
        if isinstance(item.value, str):
            try:
                host, port = split_host_port(item.value, 53)
            except ValueError as exc:
                item.problem(str(exc))
                continue
            addresses.append(UpstreamAddress(host, port))
            continue
        if not isinstance(item.value, dict):
            item.problem("must be HOST[:PORT] or a mapping with address and port")
            continue
        item.reject_unknown({"address", "port"})
        host = item.get("address", "", str, ip_address)
        port = item.get("port", 53, int, in_range(1, 65535))
        if not item.has("address"):
            item.problem("address: missing")
        elif host:
            addresses.append(UpstreamAddress(host, port))
    if isinstance(root.value.get("upstreams"), str):
        root.problem("must be a list of upstreams or the word 'resolv.conf'", "upstreams")
    elif root.value.get("upstreams") == []:
        root.problem("must list at least one upstream", "upstreams")
    return tuple(addresses), not root.has("upstreams")


def _upstream_section(root: Reader) -> Reader:
    """``upstream`` (settings) is one letter from ``upstreams`` (servers): say so on a list."""
    value = root.value.get("upstream")
    if isinstance(value, (list, str)):
        root.problem(
            "must be a mapping of forwarding settings (timeout, tcp_timeout, attempts, "
            "udp_size); did you mean upstreams?",
            "upstream",
        )
        return Reader({}, "upstream", root.problems, root.source)
    return root.section("upstream")


def _forward(node: Reader) -> ForwardPolicy:
    node.reject_unknown({"timeout", "tcp_timeout", "attempts", "udp_size", "case_randomization"})
    return ForwardPolicy(
        attempt_timeout=node.get("timeout", 1.0, float, in_range(0.05, 30)),
        tcp_timeout=node.get("tcp_timeout", 3.0, float, in_range(0.1, 60)),
        attempts=node.get("attempts", 0, int, in_range(0, 10)),
        udp_size=node.get("udp_size", 1232, int, in_range(512, 4096)),
        case_randomization=node.get("case_randomization", True, bool),
    )


def _cache(node: Reader) -> CachePolicy:
    node.reject_unknown(
        {
            "size",
            "min_ttl",
            "max_ttl",
            "negative_max_ttl",
            "serve_stale",
            "stale_window",
            "stale_answer_ttl",
            "max_memory",
            "prefetch",
        }
    )
    serve_stale = node.get("serve_stale", False, bool)
    window = node.get("stale_window", 86_400, int, in_range(1, 7 * 86_400))
    policy = CachePolicy(
        capacity=node.get("size", 100_000, int, in_range(1, 100_000_000)),
        min_ttl=node.get("min_ttl", 0, int, in_range(0, 86_400)),
        max_ttl=node.get("max_ttl", 86_400, int, in_range(1, 7 * 86_400)),
        negative_max_ttl=node.get("negative_max_ttl", 3_600, int, in_range(0, 86_400)),
        stale_window=window if serve_stale else 0,
        stale_answer_ttl=node.get("stale_answer_ttl", 30, int, in_range(1, 3_600)),
        max_memory=node.get("max_memory", 128, int, in_range(1, 1_048_576)) * 1024 * 1024,
        prefetch=node.get("prefetch", True, bool),
    )
    if policy.min_ttl > policy.max_ttl:  # every answer would be held past its own maximum
        node.problem(f"{policy.min_ttl} is above cache.max_ttl {policy.max_ttl}",
                     node.child_path("min_ttl"))  # fmt: skip
    return policy


def _serve(node: Reader) -> ServePolicy:
    node.reject_unknown({"udp_size", "max_inflight"})
    return ServePolicy(
        udp_size=node.get("udp_size", 1232, int, in_range(512, 4096)),
        max_inflight=node.get("max_inflight", 20_000, int, in_range(1, 1_000_000)),
    )


def _tcp(node: Reader) -> TcpPolicy:
    node.reject_unknown(
        {
            "idle_timeout",
            "max_connections",
            "max_inflight_per_connection",
            "output_buffer_kib",
            "output_budget_mib",
        }
    )
    return TcpPolicy(
        idle_timeout=node.get("idle_timeout", 10.0, float, in_range(0.1, 3_600)),
        max_connections=node.get("max_connections", 1_000, int, in_range(1, 1_000_000)),
        max_inflight_per_connection=node.get(
            "max_inflight_per_connection", 64, int, in_range(1, 65_535)
        ),
        output_buffer=node.get("output_buffer_kib", 256, int, in_range(16, 65_536)) * 1024,
        output_budget=node.get("output_budget_mib", 32, int, in_range(1, 65_536)) * 1024 * 1024,
    )


def _path(node: Reader, key: str, base: Path) -> Path | None:
    text = node.get(key, "", str)
    return (base / Path(text).expanduser()) if text else None


def _lists(node: Reader, base: Path) -> ListsSettings:
    node.reject_unknown({"enabled", "catalogue", "state_dir", "refresh_interval", "extra_sources"})
    return ListsSettings(
        enabled=node.get("enabled", True, bool),
        catalogue=_path(node, "catalogue", base),
        state_dir=_path(node, "state_dir", base),
        refresh_interval=node.get("refresh_interval", 0, int, in_range(0, 30 * 86_400)),
        extra_sources=extra_sources(node, base),
    )


def _policies_dir(node: Reader, base: Path) -> Path | None:
    node.reject_unknown({"dir", "local_dir"})
    return _path(node, "dir", base)


def _guarded(build: Any, section: Any, source: str, problems: list[str], default: Any) -> Any:
    """Run another module's validator, folding its ConfigError into our problem list."""
    try:
        return build(section, source)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return default


def _ratelimit(root: Reader, source: str, problems: list[str]) -> RateLimitConfig | None:
    # Rate limiting is on when the section is present (even empty: the defaults).
    if not root.has("ratelimit"):
        return None
    section = root.section("ratelimit").value  # a list or a word is a problem, not "on"
    return _guarded(ratelimit_config, section, source, problems, None)


def _metrics(node: Reader) -> str | None:
    node.reject_unknown({"listen"})
    listen = node.get("listen", "", str)
    if listen:
        try:
            parse_address(listen)
        except (ConfigError, ValueError) as exc:
            node.problem(str(exc), node.child_path("listen"))
            return None
    return listen or None


def _querylog(node: Reader, base: Path, problems: list[str]) -> QueryLogConfig | None:
    known = {
        "path",
        "rotate",
        "max_bytes",
        "retention_days",
        "client",
        "ipv4_prefix",
        "ipv6_prefix",
    }
    node.reject_unknown(known)
    path = _path(node, "path", base)
    if path is None:
        return None  # privacy by default: no per-query log unless an operator asks
    values = {k: node.value[k] for k in known - {"path"} if k in node.value}
    try:
        return QueryLogConfig(path=path, **values)
    except (ConfigError, TypeError) as exc:
        lines = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        problems.extend(f"{node.source}: {line}" for line in lines)
        return None


def _audit(node: Reader, base: Path) -> AuditSettings:
    node.reject_unknown({"ledger", "key", "period", "instance", "collector"})
    settings = AuditSettings(
        ledger=_path(node, "ledger", base),
        key=_path(node, "key", base),
        period=node.get("period", 3600, int, in_range(1, 86_400)),
        instance=node.get("instance", "", str),
        collector=node.get("collector", "", str, lambda url: url and http_url(url)),
    )
    if (settings.ledger is None) != (settings.key is None):
        node.problem("ledger and key must be given together")
    return settings
