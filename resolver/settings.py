"""The frozen settings the config reader (config.py) produces, one dataclass per concern.

Runtime modules (cache, upstream, transports, the pipeline, lists) import their settings from
here; this module imports nothing of theirs, so reading a config never loads the pipeline and
there is no config ⇄ runtime import cycle (tests/test_import_graph.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


def default_state_dir() -> Path:
    """$LACHAN_STATE_DIR, else ~/.cache/lachan (system installs pass /var/lib/lachan)."""
    env = os.environ.get("LACHAN_STATE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "lachan"


# -- where, and who ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Site:
    id: str = "lachan"
    kind: str = "other"  # school | isp | other
    timezone: str = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True, slots=True)
class ListsSettings:
    """Where the catalogue and compiled lists live; None means the bundled default."""

    enabled: bool = True
    catalogue: Path | None = None
    state_dir: Path | None = None
    refresh_interval: int = 0  # seconds between in-process refreshes; 0 = only on SIGHUP
    extra_sources: tuple[ExtraSource, ...] = ()  # the site's own lists


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The signed hourly ledger (off unless ``ledger`` and ``key`` are set)."""

    ledger: Path | None = None
    key: Path | None = None
    period: int = 3600
    instance: str = ""  # default: the host name
    collector: str = ""  # the province's collector URL for `lachan report push`


@dataclass(frozen=True, slots=True)
class ExtraSource:
    """A site's own list: by URL or local file, in a catalogue category; format may be
    ``auto`` (detected from the content each time it is parsed)."""

    id: str
    category: str
    url: str | None = None
    file: Path | None = None
    format: str = "auto"
    refresh: int = 86_400
    licence: str = "local"


# -- answering ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ServePolicy:
    udp_size: int = 1232  # our EDNS buffer size (DNS flag day 2020)
    max_inflight: int = 20_000  # concurrent cache misses before new ones are dropped
    memo_size: int = 50_000  # prepared UDP answers kept for repeated identical packets


@dataclass(frozen=True, slots=True)
class TcpPolicy:
    idle_timeout: float = 10.0  # RFC 7766 6.2.3: seconds a connection may sit without a query
    max_connections: int = 1_000
    max_inflight_per_connection: int = 64  # reading pauses beyond this many open queries
    # Answers queued for a client that does not read: above this a connection stops reading
    # (and so stops answering), and all connections together may queue at most the budget.
    output_buffer: int = 256 * 1024
    output_budget: int = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """TTL bounds and size; ``stale_window`` 0 disables serve-stale."""

    capacity: int = 100_000
    # Bytes the entries may hold in all (``cache.max_memory`` MiB): answers range from 50 B
    # to 64 KB, so a count alone bounds nothing (100,000 large TXT answers are ~13 GB).
    max_memory: int = 128 * 1024 * 1024
    min_ttl: int = 0
    max_ttl: int = 86_400
    negative_max_ttl: int = 3_600
    stale_window: int = 0  # how long past expiry an answer may still be served stale
    stale_answer_ttl: int = 30  # RFC 8767 4: TTL of a stale answer
    # A hit in the last tenth of an entry's TTL refreshes it in the background (unbound's
    # ``prefetch: yes``), so a popular name is never a client's miss. Reloadable.
    prefetch: bool = True


# -- metrics --------------------------------------------------------------------------------
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9153


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    """Where /metrics listens; port 0 picks a free port (tests)."""

    host: str = DEFAULT_METRICS_HOST
    port: int = DEFAULT_METRICS_PORT


def parse_address(text: str) -> MetricsAddress:
    """``"127.0.0.1:9153"``, ``"[::1]:9153"`` or ``":9153"`` (all IPv4) to an address."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"metrics.listen: {text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return MetricsAddress(host or "0.0.0.0", int(port))


# -- forwarding -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UpstreamAddress:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ForwardPolicy:
    attempt_timeout: float = 1.0  # per upstream attempt
    tcp_timeout: float = 3.0
    attempts: int = 0  # 0: max(2, number of upstreams)
    # Whole-exchange budget (0: two attempt timeouts): with several dead upstreams a client
    # gets SERVFAIL (or a stale answer) after this, not after every upstream timed out.
    deadline: float = 0.0
    down_after: int = 3  # consecutive failures that mark an upstream down
    down_for: float = 5.0  # first back-off; doubles per further failure up to ``down_max``
    down_max: float = 60.0
    udp_size: int = 1232
    case_randomization: bool = True  # 0x20; off per upstream by itself where case is not kept
    report_every: float = 60.0  # at most one "upstream failing" log line per upstream this often
