"""Safe-search rewrites: a CNAME to the engine's safe host, then that host's records.

The target's records come from the upstream (and the cache) under the target's own key; this
module re-encodes them after a CNAME owned by the asked name. It runs once per name and TTL
period (the result is cached like any answer), so it may use dnslib rather than hand-written
wire code.
"""

from __future__ import annotations

from .response import ScannedAnswer, question_end, scan_answer
from .wire import HEADER_LEN

REWRITE_MARK = b"\xffrewrite"  # between a query key and a target: never a real key


def rewrite_key(query_key: bytes, target: str) -> bytes:
    """Cache key of a synthesised rewrite: the asked name AND the target, because profiles
    rewrite the same name to different targets (YouTube strict vs moderate)."""
    return query_key + REWRITE_MARK + target.encode("ascii", "replace")


def target_key(query_key: bytes, target_wire: bytes) -> bytes:
    """The cache key of the rewrite target: same type, class and flags as the query."""
    return target_wire + query_key[-5:]


def rewritten(
    query_key: bytes, target_wire: bytes, target: ScannedAnswer, max_ttl: int
) -> ScannedAnswer:
    """The answer for the asked name: CNAME to the target plus the target's answer records."""
    # Imported here: dnslib costs startup time, and only a safe-search rewrite needs it.
    from dnslib import CNAME, RR, DNSHeader, DNSQuestion, DNSRecord

    upstream = DNSRecord.parse(_full_message(target_wire, query_key[-5:-1], target))
    question = DNSQuestion(_text(query_key[:-5]), int.from_bytes(query_key[-5:-3], "big"))
    reply = DNSRecord(DNSHeader(qr=1, ra=1, rcode=target.rcode), q=question)
    ttl = min([rr.ttl for rr in upstream.rr] + [max_ttl])
    reply.add_answer(RR(question.qname, 5, rdata=CNAME(_text(target_wire)), ttl=ttl))
    for rr in upstream.rr:
        reply.add_answer(rr)
    for rr in upstream.auth:
        reply.add_auth(rr)
    message = bytes(reply.pack())
    return scan_answer(message, question_end(message))


def _full_message(target_wire: bytes, type_class: bytes, answer: ScannedAnswer) -> bytes:
    counts = b"\x00\x01" + b"".join(
        n.to_bytes(2, "big") for n in (answer.ancount, answer.nscount, answer.arcount)
    )
    header = b"\x00\x00" + answer.flags.to_bytes(2, "big") + counts
    assert len(header) == HEADER_LEN
    return header + target_wire + type_class + answer.body


def _text(wire: bytes) -> str:
    labels = []
    pos = 0
    while wire[pos]:
        labels.append(wire[pos + 1 : pos + 1 + wire[pos]].decode("ascii", "replace"))
        pos += wire[pos] + 1
    return ".".join(labels) + "."
