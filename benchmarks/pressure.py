"""Resource-pressure benchmark: lachan's RSS and cache-hit p99 under a unique-miss flood, and
its RSS holding N idle TCP connections (``python benchmarks/pressure.py``, under 2 minutes)."""

from __future__ import annotations

from pathlib import Path

NSD_ZONE = """$ORIGIN .
$TTL 3600
@ IN SOA ns.pressure. hostmaster.pressure. 1 3600 600 86400 300
@ IN NS ns.pressure.
ns.pressure. IN A 127.0.0.1
* IN A 192.0.2.1
* IN AAAA 2001:db8::1
"""


def nsd_command(workdir: Path, port: int) -> list[str]:
    """Argv of NSD, authoritative for the root with a wildcard: it answers every name."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "root.zone").write_text(NSD_ZONE)
    settings = {
        "ip-address": f"127.0.0.1@{port}",
        "server-count": "1",
        "username": '""',
        "chroot": '""',
        "zonesdir": f'"{workdir}"',
        "database": '""',
        "zonelistfile": f'"{workdir}/zone.list"',
        "xfrdfile": f'"{workdir}/xfrd.state"',
        "xfrdir": f'"{workdir}"',
        "pidfile": f'"{workdir}/nsd.pid"',
        "logfile": f'"{workdir}/nsd.log"',
        # NSD's response rate limiting would drop a flood of wildcard answers.
        "rrl-ratelimit": "0",
        "rrl-whitelist-ratelimit": "0",
    }
    server = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    zone = 'zone:\n  name: "."\n  zonefile: "root.zone"\n'
    conf = f"server:\n{server}remote-control:\n  control-enable: no\n{zone}"
    (workdir / "nsd.conf").write_text(conf)
    return ["nsd", "-d", "-c", str(workdir / "nsd.conf")]
