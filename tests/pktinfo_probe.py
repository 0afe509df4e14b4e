"""Run inside a fresh network namespace (only loopback): lachan on 0.0.0.0 and [::] with
listener-mapped profiles, asked on several destination addresses; prints JSON results.

tests/test_pktinfo.py starts it with ``unshare --net --map-root-user``, so the wildcard bind
reaches loopback only, never a real interface.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
from pathlib import Path

import dns.message
import dns.query

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.stub_upstream import LachanProcess, StubUpstream, lachan_command  # noqa: E402

NAME = "www.example.test"  # the stub answers 192.0.2.1; the kid profile denies it


def udp(port: int, destination: str) -> dict[str, object]:
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(dns.message.make_query(NAME, "A").to_wire(), (destination, port))
        data, source = sock.recvfrom(65535)
    reply = dns.message.from_wire(data)
    found = [r.to_text() for rrset in reply.answer for r in rrset]
    return {"from": source[0], "port": source[1], "answer": found}


def tcp(port: int, destination: str) -> dict[str, object]:
    reply = dns.query.tcp(dns.message.make_query(NAME, "A"), destination, port=port, timeout=3)
    return {"answer": [r.to_text() for rrset in reply.answer for r in rrset]}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="lachan-pktinfo-"))
    policies = work / "policies"
    policies.mkdir()
    (policies / "kid.yaml").write_text(f"name: kid\ndeny: [{NAME}]\n", encoding="utf-8")
    (policies / "adult.yaml").write_text("name: adult\n", encoding="utf-8")
    with StubUpstream() as stub:
        process = LachanProcess(work, [stub.address])
        port = process.port
        config = work / "wildcard.yaml"
        config.write_text(
            f"""listen: ["0.0.0.0:{port}", "[::]:{port}"]
upstreams: ["{stub.address}"]
lists: {{enabled: false}}
policies: {{dir: "{policies}"}}
clients: {{default: adult, listeners: {{"127.0.0.3": kid, "::1": kid}}}}
""",
            encoding="utf-8",
        )
        process.args = lachan_command() + ["serve", "--config", str(config)]
        process.start()
        try:
            results = {
                "udp 127.0.0.1": udp(port, "127.0.0.1"),
                "udp 127.0.0.3": udp(port, "127.0.0.3"),
                "udp ::1": udp(port, "::1"),
                "tcp 127.0.0.1": tcp(port, "127.0.0.1"),
                "tcp 127.0.0.3": tcp(port, "127.0.0.3"),
                "tcp ::1": tcp(port, "::1"),
            }
        finally:
            process.stop()
    print(json.dumps({"port": port, "results": results}))


if __name__ == "__main__":
    main()
