"""Differential test: lachan serve answers RPZ local data (A, AAAA, TXT, CNAME) as unbound does.

Two real unbound processes on loopback: the reference applies the RPZ zone (``rpz:`` with
``zonefile:``) to names it resolves from a local auth-zone; the other serves the same
auth-zone without RPZ and is lachan's upstream. lachan serves the same RPZ file as a bundled
list source. dnspython asks both the same questions and compares rcode and answer records.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.stub_upstream import LachanProcess, free_port

RPZ = """$TTL 60
@ IN SOA localhost. root.localhost. 1 3600 600 86400 60
  IN NS localhost.
a.local.example A 203.0.113.50
aaaa.local.example AAAA 2001:db8::50
txt.local.example TXT "lachan: this site is blocked" "second string"
cname.local.example CNAME target.example.
both.local.example A 203.0.113.51
both.local.example AAAA 2001:db8::51
both.local.example TXT "both"
*.wild.local.example A 203.0.113.52
blocked.example CNAME .
"""
NAMES = [
    "a.local.example",
    "aaaa.local.example",
    "txt.local.example",
    "cname.local.example",
    "both.local.example",
    "x.wild.local.example",
    "blocked.example",
    "clean.example",
    "target.example",
]
TYPES = ["A", "AAAA", "TXT", "CNAME"]


def _example_zone() -> str:
    rows = "".join(
        f'{n}. 60 IN A 192.0.2.1\n{n}. 60 IN AAAA 2001:db8::1\n{n}. 60 IN TXT "upstream"\n'
        for n in [*NAMES, "wild.local.example"]
    )
    return (
        "example. 60 IN SOA localhost. root.localhost. 1 3600 600 86400 60\n"
        "example. 60 IN NS localhost.\n" + rows
    )


def _unbound_config(tmp: Path, port: int, rpz: bool) -> str:
    text = f"""server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{tmp}"
  pidfile: "{tmp}/unbound-{port}.pid"
  use-syslog: no
  logfile: "{tmp}/unbound-{port}.log"
  verbosity: 1
  module-config: "{"respip " if rpz else ""}validator iterator"
  access-control: 127.0.0.0/8 allow
remote-control:
  control-enable: no
auth-zone:
  name: "example."
  zonefile: "{tmp}/example.zone"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
"""
    if rpz:
        text += f'rpz:\n  name: "rpz.lachan.test."\n  zonefile: "{tmp}/zone.rpz"\n'
    return text


def _ask(port: int, name: str, rdtype: str) -> tuple[str, ...]:
    query = dns.message.make_query(name, rdtype)
    try:
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=1.0)
    except dns.exception.Timeout:
        return ("timeout",)
    records = sorted(f"{rr.name} {rr.rdtype.name} {item}" for rr in reply.answer for item in rr)  # type: ignore[attr-defined]
    return (dns.rcode.to_text(reply.rcode()), *records)


def _start_unbound(tmp: Path, rpz: bool) -> tuple[subprocess.Popen[bytes], int]:
    unbound = shutil.which("unbound")
    assert unbound, "unbound is required (scripts/test-packages.txt installs it)"
    port = free_port(("127.0.0.1",))
    conf = tmp / f"unbound-{port}.conf"
    conf.write_text(_unbound_config(tmp, port, rpz))
    proc = subprocess.Popen([unbound, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while _ask(port, "clean.example", "A") == ("timeout",):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log = tmp / f"unbound-{port}.log"
            pytest.fail(f"unbound did not start: {log.read_text()[-2000:] if log.exists() else ''}")
        time.sleep(0.1)
    return proc, port


def _lachan_config(tmp: Path) -> str:
    (tmp / "zone.rpz").write_text(RPZ)
    (tmp / "catalogue.yaml").write_text(
        "categories:\n  - id: phishing\n    name_vi: Lừa đảo\n    name_en: Phishing\n"
        "    default: true\n    sources:\n      - id: local-rpz\n        format: rpz\n"
        "        bundled: zone.rpz\n        licence: CC0-1.0\n"
    )
    (tmp / "policies").mkdir()
    (tmp / "policies" / "rpz.yaml").write_text("name: rpz\nblock: [phishing]\n")
    return (
        f'lists: {{catalogue: "{tmp / "catalogue.yaml"}", state_dir: "{tmp / "state"}"}}\n'
        f'policies: {{dir: "{tmp / "policies"}"}}\nclients: {{default: rpz}}\n'
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    tmp = tmp_path_factory.mktemp("rpz-local")
    (tmp / "example.zone").write_text(_example_zone())
    config = _lachan_config(tmp)
    reference, ref_port = _start_unbound(tmp, rpz=True)
    upstream, up_port = _start_unbound(tmp, rpz=False)
    lachan = LachanProcess(tmp, [f"127.0.0.1:{up_port}"], config, ipv6=False)
    try:
        lachan.start()
        yield ref_port, lachan.port
        assert lachan.alive(), lachan.stderr()
        lachan.stop()
        lachan.assert_clean_log()
    finally:
        for proc in (reference, upstream):
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rdtype", TYPES)
def test_lachan_answers_rpz_local_data_as_unbound_does(
    servers: tuple[int, int], name: str, rdtype: str
) -> None:
    unbound_port, lachan_port = servers
    assert _ask(lachan_port, name, rdtype) == _ask(unbound_port, name, rdtype)


def test_an_a_record_rule_is_answered_not_blocked(servers: tuple[int, int]) -> None:
    _unbound, lachan_port = servers
    assert _ask(lachan_port, "a.local.example", "A") == (
        "NOERROR",
        "a.local.example. A 203.0.113.50",
    )
