"""`lachan report push`: what is sent, resuming from the ack, retries, and a real site end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query
import pytest
import yaml
from aiohttp import web
from collector_helpers import T0, FakeClock, certificate, keys, running, write_ledger
from serve_fixture import collector_serve

from resolver.audit.keys import inline_public, load_public_key
from resolver.collector.api import make_app
from resolver.collector.db import Database
from resolver.collector.ingest import enroll
from resolver.errors import LachanError
from resolver.report_push import ledger_lines, push, session, to_send

LACHAN = [sys.executable, "-m", "resolver.cli"]


def test_only_lines_past_the_ack_are_sent_led_by_the_acknowledged_one() -> None:
    lines = [("gw1", s, f"g{s}".encode()) for s in range(4)] + [("gw2", 0, b"h0")]
    assert to_send(lines, {}) == [b"g0", b"g1", b"g2", b"g3", b"h0"]
    assert to_send(lines, {"gw1": 2, "gw2": 0}) == [b"g2", b"g3", b"h0"]


def test_a_ledger_ending_before_the_ack_sends_its_last_line_so_the_cut_shows() -> None:
    lines = [("gw1", s, f"g{s}".encode()) for s in range(3)]
    assert to_send(lines, {"gw1": 7}) == [b"g2"]


def test_a_torn_last_line_waits_and_garbage_is_one_clear_error(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    ledger.write_bytes(b'{"instance":"gw1","seq":0}\n{"instance":"gw')
    assert ledger_lines(ledger) == [("gw1", 0, b'{"instance":"gw1","seq":0}\n')]
    ledger.write_bytes(b"hello\n")
    with pytest.raises(LachanError, match=r"l.jsonl:1: not a ledger record"):
        ledger_lines(ledger)


@pytest.fixture
def site(tmp_path: Path, db: Database) -> tuple[Path, Path]:
    private, public = keys(tmp_path / "a")
    enroll(db, "thpt-a", load_public_key(public), T0)
    ledger = tmp_path / "a.jsonl"
    write_ledger(ledger, private, "thpt-a", 5)
    return ledger, private


def test_a_push_resumes_from_the_ack_and_pushing_twice_changes_nothing(db, site) -> None:
    ledger, private = site
    with running(make_app(Database(db.url), FakeClock(T0))) as base:
        first = push(ledger, "thpt-a", base, session())
        assert (first.sent, first.acks, first.rejected) == (5, {"gw1": 4}, ())
        again = push(ledger, "thpt-a", base, session())
        assert (again.sent, again.acks, again.rejected) == (1, {"gw1": 4}, ())  # the anchor
        write_ledger(ledger, private, "thpt-a", 2, start=T0 + 5 * 3600)
        more = push(ledger, "thpt-a", base, session())
        assert (more.sent, more.acks) == (3, {"gw1": 6})
    with db.tx() as tx:
        assert tx.run("SELECT COUNT(*) FROM records") == [(7,)]


def test_a_collector_answering_503_is_retried_with_back_off(db, site) -> None:
    ledger, _ = site
    failures = {"left": 2}

    @web.middleware
    async def flaky(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            raise web.HTTPServiceUnavailable()
        return await handler(request)

    app = make_app(Database(db.url), FakeClock(T0))
    app.middlewares.append(flaky)
    with running(app) as base:
        outcome = push(ledger, "thpt-a", base, session(backoff=0.05))
    assert failures["left"] == 0 and outcome.acks == {"gw1": 4}


def _query(port: int, name: str) -> None:
    dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)


def _records(ledger: Path) -> int:
    return ledger.read_bytes().count(b"\n") if ledger.exists() else 0


def test_a_running_site_with_a_one_second_period_pushes_and_is_covered(
    tmp_path: Path, db_url: str, lachan
) -> None:  # fmt: skip
    private, public = keys(tmp_path / "keys")
    ledger = tmp_path / "ledger.jsonl"
    registry = tmp_path / "sites.yaml"
    entry = {"id": "thpt-a", "name": "THPT A", "kind": "school", "district": "Quận 1",
             "public_key": inline_public(load_public_key(public))}  # fmt: skip
    registry.write_text(yaml.safe_dump({"sites": [entry]}), encoding="utf-8")
    with collector_serve(db_url, registry) as base:
        config = (f"site: {{id: thpt-a, kind: school}}\n"
                  f"audit: {{ledger: {ledger}, key: {private}, period: 1, instance: gw1,"
                  f" collector: '{base}'}}\n")  # fmt: skip
        server = lachan(config=config, ipv6=False)
        deadline = time.monotonic() + 20
        while _records(ledger) < 3 and time.monotonic() < deadline:
            _query(server.port, "www.example.test")
            time.sleep(0.3)
        assert _records(ledger) >= 3, server.stderr()
        cfg = str(next(tmp_path.glob("lachan-*.yaml")))
        done = subprocess.run([*LACHAN, "report", "push", "--config", cfg], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        acked = int(done.stdout.rsplit("gw1 seq ", 1)[1])
        last = json.loads(ledger.read_bytes().splitlines()[acked])
        assert last["seq"] == acked >= 2
        # Judged as of the pushed record's end: a 1 s period is silent 2 s later.
        status = subprocess.run([*LACHAN, "collector", "status", "--db", db_url, "--registry",
                                 str(registry), "--json", "--now", last["period_end"]],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        (row,) = json.loads(status.stdout)
        assert (row["site"], row["covered"], row["chain"], row["last_seq"]) == (
            "thpt-a", True, "valid", acked)  # fmt: skip


def test_push_without_a_collector_url_names_the_missing_key(tmp_path: Path) -> None:
    cfg = tmp_path / "lachan.yaml"
    cfg.write_text(f"audit: {{ledger: {tmp_path / 'l.jsonl'}, key: {tmp_path / 'k'}}}\n")
    done = subprocess.run([*LACHAN, "report", "push", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"error: {cfg}: audit.collector: not set (or give --collector URL)\n"


def test_check_config_takes_a_one_second_period_with_a_warning(tmp_path: Path) -> None:
    cfg = tmp_path / "lachan.yaml"
    subprocess.run([*LACHAN, "audit", "keygen", "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    cfg.write_text(f"audit: {{ledger: {tmp_path / 'l'}, key: {tmp_path / 'audit.key'}, period: 1,"
                   " collector: 'https://collector.example'}\n")  # fmt: skip
    done = subprocess.run([*LACHAN, "check-config", "--files-only", str(cfg)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, f"{cfg}: ok\n")
    assert done.stderr == (f"{cfg}: warning: audit.period 1 s is below 60 s: for tests and "
                           "demonstrations only\n")  # fmt: skip


def test_push_over_tls_checks_the_collectors_certificate(tmp_path: Path) -> None:
    import os

    private, public = keys(tmp_path / "keys")
    ledger = tmp_path / "ledger.jsonl"
    write_ledger(ledger, private, "thpt-a", 3)
    registry = tmp_path / "sites.yaml"
    entry = {"id": "thpt-a", "kind": "school", "public_key": inline_public(load_public_key(public))}
    registry.write_text(yaml.safe_dump({"sites": [entry]}), encoding="utf-8")
    cfg = tmp_path / "lachan.yaml"
    cfg.write_text(
        f"site: {{id: thpt-a, kind: school}}\naudit: {{ledger: {ledger}, key: {private}}}\n"
    )
    cert, key = certificate(tmp_path)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with collector_serve(db, registry, "--tls-cert", str(cert), "--tls-key", str(key),
                         ca=str(cert)) as base:  # fmt: skip
        command = [*LACHAN, "report", "push", "--config", str(cfg), "--collector", base]
        start = time.monotonic()
        untrusted = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                   env={**os.environ, "REQUESTS_CA_BUNDLE": ""})  # fmt: skip
        assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert untrusted.stderr.count("\n") == 1
        # Not retried: five back-offs from 1 s would take 30 s; a bad certificate stays bad.
        assert time.monotonic() - start < 15
        trusted = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "REQUESTS_CA_BUNDLE": str(cert)})  # fmt: skip
        assert trusted.returncode == 0, trusted.stderr
        assert trusted.stdout == "sent 3 lines; the collector acknowledges gw1 seq 2\n"


def _recording_proxy(seen: list[tuple[str, bytes]]) -> web.Application:
    """A plain-HTTP forward proxy that notes each request line and body it relays."""
    import aiohttp

    async def relay(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((f"{request.method} {request.url}", body))
        async with aiohttp.ClientSession() as http, http.request(
            request.method, str(request.url), data=body,
            headers={"Content-Type": request.headers.get("Content-Type", "")},
        ) as reply:  # fmt: skip
            return web.Response(body=await reply.read(), status=reply.status,
                                content_type=reply.content_type)  # fmt: skip

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


def test_push_goes_through_the_proxy_named_in_the_environment_with_only_ledger_lines(
    db, site, monkeypatch
) -> None:  # fmt: skip
    ledger, _ = site
    seen: list[tuple[str, bytes]] = []
    with running(make_app(Database(db.url), FakeClock(T0))) as base, \
            running(_recording_proxy(seen)) as proxy:  # fmt: skip
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        outcome = push(ledger, "thpt-a", base, session())
    assert outcome.acks == {"gw1": 4}
    assert seen == [(f"GET {base}/api/v1/sites/thpt-a/acks", b""),
                    (f"POST {base}/api/v1/sites/thpt-a/records", ledger.read_bytes())]  # fmt: skip


def test_a_ledger_cut_after_its_push_is_reported_at_the_site_and_refused(db, site) -> None:
    ledger, _ = site
    with running(make_app(Database(db.url), FakeClock(T0))) as base:
        assert push(ledger, "thpt-a", base, session()).acks == {"gw1": 4}
        ledger.write_bytes(b"".join(ledger.read_bytes().splitlines(keepends=True)[:3]))
        outcome = push(ledger, "thpt-a", base, session())
    assert outcome.rejected == (
        "gw1: the ledger ends at seq 2 but the collector acknowledged seq 4: records were "
        "removed from its end",
        "seq 2: replay: seq 2 was acknowledged already",
    )  # fmt: skip
    assert outcome.acks == {"gw1": 4}


def test_a_retry_after_longer_than_the_timer_allows_is_cut_to_max_wait() -> None:
    from urllib3.response import HTTPResponse

    from resolver.report_push import MAX_WAIT

    retry = session().get_adapter("https://x").max_retries
    assert retry.get_retry_after(HTTPResponse(headers={"Retry-After": "3600"})) == MAX_WAIT
    assert retry.get_retry_after(HTTPResponse(headers={"Retry-After": "3"})) == 3
    unit = Path(__file__).parents[2] / "systemd" / "lachan-report-push.service"
    limit = re.search(r"^TimeoutStartSec=(\d+)min$", unit.read_text(), re.M)
    assert limit and 5 * MAX_WAIT < int(limit.group(1)) * 60  # five waits, then the unit's end
