"""The push API: sites ask for their last acknowledged seq and push ledger lines, nothing else.

Authentication is the site's signature on every line: a line not signed by the enrolled key is
refused, so the API needs no password and works from behind NAT and proxies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import tzinfo

from aiohttp import web

from resolver.audit.record import LABEL
from resolver.collector.db import Database
from resolver.collector.ingest import MAX_LINES, PROVINCE_TZ, UnknownSite, acks, ingest, site_key

DB_KEY: web.AppKey[Database] = web.AppKey("db", Database)
CLOCK_KEY: web.AppKey[Callable[[], float]] = web.AppKey("clock")
TZ_KEY: web.AppKey[tzinfo] = web.AppKey("tz")
MAX_BODY = 8 * 1024 * 1024  # MAX_LINES lines of ~1 KiB, with room


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
    return web.json_response(asdict(result), status=409 if result.rejected else 200)


def add_routes(app: web.Application) -> None:
    """Mount the push API under ``/api/v1``."""
    app.router.add_get("/api/v1/sites/{site}/acks", get_acks)
    app.router.add_post("/api/v1/sites/{site}/records", post_records)


def make_app(
    db: Database, clock: Callable[[], float] = time.time, tz: tzinfo = PROVINCE_TZ
) -> web.Application:
    """An application with the push API only (the dashboard adds its own routes)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[DB_KEY] = db
    app[CLOCK_KEY] = clock
    app[TZ_KEY] = tz
    add_routes(app)
    return app
