"""The push API: sites ask for their last acknowledged seq and push ledger lines, nothing else.

Authentication is the site's signature on every line: a line not signed by the enrolled key is
refused, so the API needs no password and works from behind NAT and proxies. Requests that fail
(unknown site, bad id, too large, lines not signed by the site) are limited per source address
and per site (``limits``): past the limit the API answers 429 with Retry-After before any work.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import tzinfo

from aiohttp import web

from resolver.audit.label import LABEL
from resolver.collector import proxy
from resolver.collector.db import Database
from resolver.collector.ingest import MAX_LINES, PROVINCE_TZ, UnknownSite, acks, ingest, site_key
from resolver.collector.limits import PushGuard
from resolver.collector.metrics import exposition

DB_KEY: web.AppKey[Database] = web.AppKey("db", Database)
CLOCK_KEY: web.AppKey[Callable[[], float]] = web.AppKey("clock")
TZ_KEY: web.AppKey[tzinfo] = web.AppKey("tz")
GUARD_KEY: web.AppKey[PushGuard] = web.AppKey("guard", PushGuard)
FAILED_KEY: web.RequestKey[str] = web.RequestKey("failed", str)
MAX_BODY = 8 * 1024 * 1024  # MAX_LINES lines of ~620 bytes (1 KiB at most), with room
# Refusals that need no key of the site's: anybody can produce them, so they are junk.
UNSIGNED = frozenset({"forged", "other-key", "other-site", "replay"})
# Whole requests refused, as the failure kind counted (a bounded label).
_FAILURES = {400: "bad-request", 404: "unknown-site", 413: "too-large"}


def _site(request: web.Request) -> str:
    site = request.match_info["site"]
    if not LABEL.fullmatch(site):
        raise web.HTTPBadRequest(text="bad site id\n")
    return site


async def get_acks(request: web.Request) -> web.Response:
    """``{"site": ..., "acks": {instance: last_seq}}``; an instance not listed starts at seq 0."""
    site = _site(request)
    db = request.app[DB_KEY]
    try:
        await asyncio.to_thread(site_key, db, site)
    except UnknownSite as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from None
    return web.json_response({"site": site, "acks": await asyncio.to_thread(acks, db, site)})


async def post_records(request: web.Request) -> web.Response:
    """Body: ledger lines (``application/x-ndjson``). 200 when all were taken, else 409."""
    site = _site(request)
    size = request.content_length or 0
    if size > MAX_BODY:  # refused before a byte of it is read
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=size)
    body = await request.read()
    lines = [line for line in body.split(b"\n") if line]
    if len(lines) > MAX_LINES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_LINES, actual_size=len(lines))
    now = int(request.app[CLOCK_KEY]())
    try:
        result = await asyncio.to_thread(
            ingest, request.app[DB_KEY], site, lines, now, request.app[TZ_KEY]
        )
    except UnknownSite as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from None
    if any(r["kind"] in UNSIGNED for r in result.rejected):
        request[FAILED_KEY] = "unsigned"
    return web.json_response(asdict(result), status=409 if result.rejected else 200)


@web.middleware
async def guard_pushes(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """429 for a client past its failure budget; every failed API request spends from it."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    guard, now = request.app[GUARD_KEY], request.app[CLOCK_KEY]()
    site = request.match_info.get("site")
    wait = guard.check(request.remote, site, now)
    if wait:
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(wait)},
                                      text=f"too many failed pushes: retry after {wait} s\n")  # fmt: skip
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status in _FAILURES:
            guard.failed(request.remote, None, _FAILURES[exc.status], now)
        raise
    if FAILED_KEY in request:
        guard.failed(request.remote, site, request[FAILED_KEY], now)  # enrolled: it answered 409
    return response


def _loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


async def get_metrics(request: web.Request) -> web.Response:
    """The push limiter's counts for a Prometheus on the same host; nobody else."""
    if not _loopback(request.remote):
        raise web.HTTPForbidden(text="metrics are served to loopback clients only\n")
    return web.Response(body=exposition(request.app[GUARD_KEY]),
                        content_type="text/plain", charset="utf-8")  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Mount the push API under ``/api/v1``, and the metrics."""
    app.router.add_get("/api/v1/sites/{site}/acks", get_acks)
    app.router.add_post("/api/v1/sites/{site}/records", post_records)
    app.router.add_get("/metrics", get_metrics)


def make_app(
    db: Database,
    clock: Callable[[], float] = time.time,
    tz: tzinfo = PROVINCE_TZ,
    trusted: Sequence[proxy.Network] = (),
    guard: PushGuard | None = None,
) -> web.Application:
    """An application with the push API only (the dashboard adds its own routes).

    The proxy middleware comes first: the limits and the cookies need the real client.
    """
    app = web.Application(client_max_size=MAX_BODY,
                          middlewares=[proxy.middleware(tuple(trusted)), guard_pushes])  # fmt: skip
    app[DB_KEY] = db
    app[CLOCK_KEY] = clock
    app[TZ_KEY] = tz
    app[GUARD_KEY] = guard or PushGuard()
    add_routes(app)
    return app
