"""The resolvers under test and the upstream: each writes its config and returns its argv."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from lachan_peer import LachanCaps, lachan_argv

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Peer:
    """One measured resolver: a name, its port, and how to start it."""

    name: str
    kind: str  # lachan | unbound | dnsmasq | pdns-recursor | baseline-dnslib
    port: int
    workers: int = 1
    cpus: str | None = "1"  # taskset list; None = unpinned
    binary: str | None = None  # what must be installed for this peer
    profile: str = (
        "bench"  # lachan only: "bench" blocks the list alone; "under16" is the full policy
    )

    @property
    def host(self) -> str:
        return "127.0.0.1"


def _unbound(p: Peer, d: Path, data: Path, prefix: str, up: int) -> list[str]:
    conf = d / "unbound.conf"
    conf.write_text(f"""server:
  interface: 127.0.0.1@{p.port}
  port: {p.port}
  do-ip6: no
  num-threads: {p.workers}
  so-reuseport: yes
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-daemonize: no
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  include: "{data / (prefix + ".unbound.conf")}"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@{up}
remote-control:
  control-enable: no
""")
    return ["unbound", "-d", "-c", str(conf)]


def _dnsmasq(p: Peer, d: Path, data: Path, prefix: str, up: int) -> list[str]:
    conf = d / "dnsmasq.conf"
    # cache-size=10000 is what Pi-hole sets; addn-hosts is Pi-hole v4's gravity.list.
    conf.write_text(f"""port={p.port}
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
server=127.0.0.1#{up}
addn-hosts={data / (prefix + ".hosts")}
cache-size=10000
user=root
pid-file={d}/dnsmasq.pid
log-facility={d}/dnsmasq.log
""")
    return ["dnsmasq", "--keep-in-foreground", "-C", str(conf)]


def _pdns(p: Peer, d: Path, data: Path, prefix: str, up: int) -> list[str]:
    (d / "rpz.lua").write_text(f'rpzFile("{data / (prefix + ".rpz")}", {{policyName="bench"}})\n')
    (d / "recursor.conf").write_text(f"""local-address=127.0.0.1
local-port={p.port}
forward-zones-recurse=.=127.0.0.1:{up}
threads={p.workers}
pdns-distributes-queries=no
reuseport=yes
dnssec=off
lua-config-file={d}/rpz.lua
socket-dir={d}
daemon=no
quiet=yes
loglevel=4
disable-syslog=yes
dont-query=
allow-from=127.0.0.0/8
""")
    return ["pdns_recursor", f"--config-dir={d}"]


def _baseline(p: Peer, d: Path, data: Path, prefix: str, up: int) -> list[str]:
    return [
        sys.executable,
        str(HERE / "baseline_dnslib.py"),
        "--port",
        str(p.port),
        "--upstream",
        f"127.0.0.1:{up}",
        "--blocklist",
        str(data / f"{prefix}.txt"),
    ]


WRITERS = {
    "unbound": _unbound,
    "dnsmasq": _dnsmasq,
    "pdns-recursor": _pdns,
    "baseline-dnslib": _baseline,
}


def peer_argv(
    p: Peer,
    d: Path,
    data: Path,
    prefix: str,
    up: int,
    lachan_cmd: str | None = None,
    caps: LachanCaps | None = None,
) -> list[str]:
    """Write p's config under d for list `prefix` ('blocklist' or 'empty'); return its argv."""
    d.mkdir(parents=True, exist_ok=True)
    if p.kind == "lachan":
        return lachan_argv(
            p.port, p.workers, d, data / f"{prefix}.txt", up, lachan_cmd, caps or LachanCaps(),
            p.profile,
        )  # fmt: skip
    return WRITERS[p.kind](p, d, data, prefix, up)


def nsd_argv(d: Path, port: int) -> list[str]:
    """NSD authoritative for '.', answering every name with one A and one AAAA."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "root.zone").write_text("""$ORIGIN .
$TTL 3600
@ IN SOA ns.bench-upstream. hostmaster.bench-upstream. 1 3600 600 86400 300
@ IN NS ns.bench-upstream.
ns.bench-upstream. IN A 127.0.0.1
* IN A 192.0.2.1
* IN AAAA 2001:db8::1
""")
    # RRL off: NSD's default rate limit otherwise drops wildcard answers after ~200 qps.
    (d / "nsd.conf").write_text(f"""server:
  ip-address: 127.0.0.1@{port}
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "{d}"
  database: ""
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  pidfile: "{d}/nsd.pid"
  logfile: "{d}/nsd.log"
  verbosity: 1
  refuse-any: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: "."
  zonefile: "root.zone"
""")
    return ["nsd", "-d", "-c", str(d / "nsd.conf")]


PEERS = (
    Peer("lachan", "lachan", 5310),
    # The shipped under16 profile (safe search, keywords, schedules, anti-bypass) over the
    # same list: its cache-hit QPS against plain lachan's is what the policy costs.
    Peer("lachan-under16", "lachan", 5311, profile="under16"),
    Peer("unbound", "unbound", 5301, binary="unbound"),
    Peer("dnsmasq", "dnsmasq", 5302, binary="dnsmasq"),
    Peer("pdns-recursor", "pdns-recursor", 5303, binary="pdns_recursor"),
    Peer("baseline-dnslib", "baseline-dnslib", 5304),
)
