"""The naive Python forwarder a newcomer writes first: the floor lachan is measured against.

dnslib's DNSServer (socketserver: one thread per request), a Python set as the blocklist (the
name or any parent listed -> NXDOMAIN), no cache, a fresh upstream socket for every query.
"""

from __future__ import annotations

import argparse

from dnslib import RCODE, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class NaiveResolver(BaseResolver):
    def __init__(self, blocked: set[str], upstream: tuple[str, int]):
        self.blocked, self.upstream = blocked, upstream

    def resolve(self, request, handler):
        labels = str(request.q.qname).rstrip(".").lower().split(".")
        if any(".".join(labels[i:]) in self.blocked for i in range(len(labels))):
            reply = request.reply()
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        try:  # DNSRecord.send opens a new socket per call: that is the point of this baseline
            return DNSRecord.parse(request.send(*self.upstream, timeout=2.0))
        except Exception:  # noqa: BLE001 - any upstream trouble is SERVFAIL, never NXDOMAIN
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=5304)
    ap.add_argument("--upstream", default="127.0.0.1:5300", help="HOST:PORT")
    ap.add_argument("--blocklist", required=True, help="one domain per line")
    a = ap.parse_args()
    with open(a.blocklist, encoding="utf-8") as f:
        blocked = {line.strip().lower() for line in f if line.strip()}
    host, port = a.upstream.rsplit(":", 1)
    logger = DNSLogger("-request,-reply,-truncated,-error,-recv,-send", prefix=False)
    server = DNSServer(
        NaiveResolver(blocked, (host, int(port))), port=a.port, address="127.0.0.1", logger=logger
    )
    server.start()  # serve_forever in this thread, until SIGTERM


if __name__ == "__main__":
    main()
