"""`lachan report push`: send the collector the ledger lines it has not acknowledged yet.

Only ledger lines leave the site: exactly the signed bytes of the file, nothing else. The
collector's acknowledgement decides what is sent, so a push interrupted half-way resumes and
pushing twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from resolver.errors import LachanError

BATCH = 1000  # lines per request: well below the collector's limit
TIMEOUT = (10, 60)  # connect, read (s)
MAX_WAIT = 120  # s: five such waits stay inside the timer unit's TimeoutStartSec=15min


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What one push did: lines sent, the acknowledged seq per instance, refusals if any."""

    sent: int
    acks: dict[str, int]
    rejected: tuple[str, ...]


class _Retry(Retry):
    """urllib3's retries, with the collector's Retry-After obeyed but never beyond MAX_WAIT."""

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_WAIT)


def session(retries: int = 5, backoff: float = 1.0) -> requests.Session:
    """A session retrying connection errors and 429/5xx with exponential back-off.

    POST is retried too: the collector treats a line it already holds as a duplicate, so a
    retried request never stores anything twice. A 429 or 503 with Retry-After waits as long
    as the collector asks (up to MAX_WAIT) instead of the back-off. Proxies come from the
    environment (HTTPS_PROXY, NO_PROXY), as requests does by default.
    """
    # other=0: a certificate the collector cannot prove is not retried, it fails at once.
    retry = _Retry(total=retries, other=0, backoff_factor=backoff,
                  status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"GET", "POST"}), raise_on_status=False)  # fmt: skip
    http = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


def ledger_lines(path: Path) -> list[tuple[str, int, bytes]]:
    """``(instance, seq, line)`` for every complete line; a torn last line is left for later."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LachanError(f"{path}: cannot read ledger: {exc.strerror}") from None
    out = []
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            obj = json.loads(raw)
            out.append((str(obj["instance"]), int(obj["seq"]), raw + b"\n"))
        except (ValueError, KeyError, TypeError):
            raise LachanError(f"{path}:{number}: not a ledger record") from None
    return out


def to_send(lines: list[tuple[str, int, bytes]], acks: dict[str, int]) -> list[bytes]:
    """Per instance, the lines past its ack, led by the acknowledged line itself as an anchor.

    The anchor lets the collector see a ledger rewritten under an acknowledged record; if the
    ledger now ends before the ack (its tail was cut), its last line is sent so that shows.
    """
    out = []
    for instance in dict.fromkeys(i for i, _, _ in lines):
        mine = [(seq, raw) for i, seq, raw in lines if i == instance]
        ack = acks.get(instance, -1)
        tail = [raw for seq, raw in mine if seq >= ack]
        out.extend(tail or [mine[-1][1]])
    return out


def _batches(items: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def push(ledger: Path, site: str, base_url: str, http: requests.Session) -> PushOutcome:
    """Ask the collector's acks, send what it lacks in batches, stop at the first refusal."""
    api = f"{base_url.rstrip('/')}/api/v1/sites/{site}"
    acks = _json(http.get(f"{api}/acks", timeout=TIMEOUT), api)["acks"]
    lines = ledger_lines(ledger)
    pending = to_send(lines, acks)
    cut = shortened(lines, acks)
    sent = 0
    for batch in _batches(pending):
        reply = http.post(f"{api}/records", data=b"".join(batch), timeout=TIMEOUT,
                          headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
        body = _json(reply, api, ok=(200, 409))
        sent += len(batch)
        acks = body["acks"]
        if body["rejected"]:
            refused = tuple(f"seq {r['seq']}: {r['kind']}: {r['detail']}" for r in body["rejected"])
            return PushOutcome(sent, acks, cut + refused)
    return PushOutcome(sent, acks, cut)


def shortened(lines: list[tuple[str, int, bytes]], acks: dict[str, int]) -> tuple[str, ...]:
    """One message per instance whose ledger now ends before what the collector acknowledged."""
    last: dict[str, int] = {}
    for instance, seq, _ in lines:
        last[instance] = seq
    return tuple(f"{inst}: the ledger ends at seq {last[inst]} but the collector "
                 f"acknowledged seq {acks[inst]}: records were removed from its end"
                 for inst in last if last[inst] < acks.get(inst, -1))  # fmt: skip


def _json(reply: requests.Response, api: str, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    if reply.status_code == 429:
        raise LachanError(f"{api}: the collector still refuses after retries (429, too many failed"
                          f" pushes from this address); it asks to wait"
                          f" {reply.headers.get('Retry-After', '?')} s: the next run will push")  # fmt: skip
    if reply.status_code not in ok:
        raise LachanError(f"{api}: the collector answered {reply.status_code}: "
                          f"{reply.text.strip()[:200]}")  # fmt: skip
    try:
        body = reply.json()
    except ValueError:
        raise LachanError(f"{api}: the collector's answer is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("acks"), dict):
        raise LachanError(f"{api}: unexpected answer from the collector")
    return body
