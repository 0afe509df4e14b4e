"""What a reload can apply to a running process, and what needs a restart (and why)."""

from __future__ import annotations

import dataclasses

from .config import Config

# Each setting a reload does not apply, with the reason an operator reads in the log line.
_NEEDS_RESTART: tuple[tuple[str, str, str], ...] = (
    ("listeners", "listen", "sockets are bound once at start"),
    ("upstreams", "upstreams", "upstream sockets are opened once at start"),
    ("forward", "upstream", "upstream sockets are opened once at start"),
    ("cache", "cache", "the cache is kept across reloads, with the limits it started with"),
    ("serve", "server", "the query pipeline is built once at start"),
    ("tcp", "tcp", "open TCP connections keep their limits"),
    ("ratelimit", "ratelimit", "rate-limit buckets are kept across reloads"),
    ("metrics_listen", "metrics.listen", "the metrics socket is bound once at start"),
    ("querylog", "querylog", "the query log file is opened once at start"),
    ("audit", "audit", "the ledger's open period is signed with the settings it began with"),
    ("workers", "workers", "worker processes are started once"),
    ("console", "console", "the console and block page sockets are bound once at start"),
    ("subscribers", "subscribers", "the store's follower and the RADIUS listener start once"),
)


def restart_needed(old: Config, new: Config) -> list[str]:
    """``"key (reason)"`` for each changed setting that only a restart applies."""
    kept = _kept(old, new)
    return [
        f"{key} ({why})" for field, key, why in _NEEDS_RESTART if kept[field] != getattr(new, field)
    ]


def _kept(old: Config, new: Config) -> dict[str, object]:
    """What a reload keeps of ``old``: each setting of the list above, except
    ``cache.prefetch`` (a flag the pipeline reads on each hit near expiry) taken from ``new``."""
    kept = {field: getattr(old, field) for field, _, _ in _NEEDS_RESTART}
    kept["cache"] = dataclasses.replace(old.cache, prefetch=new.cache.prefetch)
    return kept


def applied_config(old: Config, new: Config) -> Config:
    """The config a process serves after a reload: the new one, except what needs a restart.

    Everything else (site labels, lists, profiles, clients, ACL) comes from ``new``, so
    metrics and the canary agree on the site after a reload that changes ``site.id``.
    """
    return dataclasses.replace(new, **_kept(old, new))  # type: ignore[arg-type]
