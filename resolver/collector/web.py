"""The collector's aiohttp application: the push API and, behind a login, the dashboard."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from resolver.collector import auth, views
from resolver.collector.api import CLOCK_KEY, DB_KEY, TZ_KEY, make_app
from resolver.collector.dashboard import (
    by_area,
    month_tables,
    not_covered,
    period_label,
    share,
    within,
)
from resolver.collector.db import Database
from resolver.collector.exports import coverage_csv, coverage_pdf
from resolver.collector.i18n import TEXT, pick
from resolver.collector.limits import PushGuard
from resolver.collector.proxy import Network
from resolver.console.sessions import same_token  # one constant-time check for both web apps
from resolver.coverage.registry import Site

SITES_KEY: web.AppKey[Sequence[Site]] = web.AppKey("sites")
TITLE_KEY: web.AppKey[str] = web.AppKey("title", str)
USER_KEY: web.RequestKey[auth.Session] = web.RequestKey("user", auth.Session)
COOKIE, PRE_COOKIE, LANG_COOKIE = "lachan_session", "lachan_login", "lang"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_PUBLIC = ("/login", "/api/", "/metrics")  # the push API is signed; metrics are loopback-only
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[1] / "data"),
    autoescape=True,
)


def _now(request: web.Request) -> int:
    return int(request.app[CLOCK_KEY]())


def _lang(request: web.Request) -> str:
    return pick(request.query.get("lang") or request.cookies.get(LANG_COOKIE))


def _when(tz: tzinfo) -> Callable[[int | None], str]:
    def when(ts: int | None) -> str:
        return datetime.fromtimestamp(ts, tz).strftime("%d/%m/%Y %H:%M") if ts else "—"

    return when


def _page(request: web.Request, template: str, **context: Any) -> web.Response:
    lang = _lang(request)
    tz = request.app[TZ_KEY]
    html = _ENV.get_template(template).render(
        t=TEXT[lang], lang=lang, province=request.app[TITLE_KEY], zone=str(tz),
        when=_when(tz), user=request.get(USER_KEY), **context,
    )  # fmt: skip
    response = web.Response(text=html, content_type="text/html")
    if "lang" in request.query:
        response.set_cookie(LANG_COOKIE, lang, httponly=True, samesite="Strict",
                            secure=request.secure)  # fmt: skip
    return response


async def _db(request: web.Request, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, request.app[DB_KEY], *args)


@web.middleware
async def require_login(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:  # noqa: E501
    """No anonymous access to anything but the login page and the signed push API."""
    if request.path.startswith(_PUBLIC):
        return await handler(request)
    token = request.cookies.get(COOKIE, "")
    user = await _db(request, auth.session, token, _now(request)) if token else None
    if user is None:
        raise web.HTTPFound("/login")
    request[USER_KEY] = user
    if request.method == "POST":
        form = await request.post()
        if not same_token(user.csrf, str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="CSRF token missing or wrong\n")
    return await handler(request)


async def login_form(request: web.Request) -> web.Response:
    """The login page; its form carries a token also set as a cookie (double submit).

    An existing token is kept: a browser also lands here for /favicon.ico (redirected like any
    anonymous request), and a fresh token then would void the form already on screen.
    """
    token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    response = _page(request, "collector_login.html", csrf=token,
                     failed="failed" in request.query)  # fmt: skip
    response.set_cookie(PRE_COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.secure)  # fmt: skip
    return response


async def login_post(request: web.Request) -> web.StreamResponse:
    """Check the CSRF pair and the password; a session cookie on success."""
    form = await request.post()
    expected = request.cookies.get(PRE_COOKIE, "")
    if not expected or not same_token(expected, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="CSRF token missing or wrong\n")
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    user = await _db(request, auth.login, name, password, _now(request))
    if user is None:
        raise web.HTTPFound("/login?failed=1")
    response = web.HTTPFound("/")
    response.set_cookie(COOKIE, user.token, httponly=True, samesite="Strict",
                        secure=request.secure, max_age=auth.SESSION_SECONDS)  # fmt: skip
    response.del_cookie(PRE_COOKIE)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await _db(request, auth.logout, request[USER_KEY].token)
    response = web.HTTPFound("/login")
    response.del_cookie(COOKIE)
    raise response


async def dashboard(request: web.Request) -> web.Response:
    statuses = await _db(request, views.statuses, request.app[SITES_KEY], _now(request))
    content, bypass = month_tables(await _db(request, views.monthly))
    t = TEXT[_lang(request)]
    shares = [(t["schools"], share(statuses, "school")), (t["isps"], share(statuses, "isp"))]
    return _page(request, "collector_dashboard.html", statuses=statuses, shares=shares,
                 areas=by_area(statuses), missing=not_covered(statuses), content=content,
                 bypass=bypass)  # fmt: skip


async def site_page(request: web.Request) -> web.Response:
    site_id = request.match_info["site"]
    sites = [s for s in request.app[SITES_KEY] if s.id == site_id]
    if not sites:
        raise web.HTTPNotFound(text="no such site\n")
    (status,) = await _db(request, views.statuses, sites, _now(request))
    content, bypass = month_tables(await _db(request, views.monthly, site_id))
    return _page(request, "collector_site.html", status=status, content=content, bypass=bypass,
                 history=await _db(request, views.history, site_id),
                 incidents=await _db(request, views.incidents, site_id))  # fmt: skip


async def _export(request: web.Request, kind: str) -> list[Any]:
    user = request[USER_KEY]
    if user.role != "auditor":
        raise web.HTTPForbidden(text="exports are for auditors\n")
    await _db(request, auth.log_access, user.name, "export", kind, _now(request))
    statuses = await _db(request, views.statuses, request.app[SITES_KEY], _now(request))
    return [statuses, await _db(request, views.monthly)]


async def export_csv(request: web.Request) -> web.Response:
    statuses, _ = await _export(request, "csv")
    text = coverage_csv(statuses, request.app[TZ_KEY])
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": "attachment; filename=coverage.csv"})  # fmt: skip


def _period(request: web.Request) -> tuple[str | None, str | None]:
    """``?from=YYYY-MM&to=YYYY-MM`` (either may be left out): the months a report covers."""
    months = (request.query.get("from") or None, request.query.get("to") or None)
    for name, month in zip(("from", "to"), months, strict=True):
        if month is not None and not _MONTH.fullmatch(month):
            raise web.HTTPBadRequest(text=f"{name}={month!r}: expected YYYY-MM\n")
    return months


async def export_pdf(request: web.Request) -> web.Response:
    """The printable report; ``?from=2025-01&to=2025-12`` makes it the annual one."""
    first, last = _period(request)
    statuses, months = await _export(request, "pdf")
    period = period_label(first, last) if first or last else None
    data = await asyncio.to_thread(coverage_pdf, statuses, within(months, first, last),
                                   request.app[TITLE_KEY], request.app[TZ_KEY], _now(request),
                                   TEXT[_lang(request)], period)  # fmt: skip
    return web.Response(body=data, content_type="application/pdf")


def make_web_app(db: Database, sites: Sequence[Site], tz: tzinfo, title: str,
                 clock: Callable[[], float] = time.time, trusted: Sequence[Network] = (),
                 guard: PushGuard | None = None) -> web.Application:  # fmt: skip
    """The whole collector application.

    Cookies are ``Secure`` whenever the request is: over the collector's own TLS, or forwarded
    as https by a ``trusted`` proxy (``proxy.py``); an untrusted client's headers count for none.
    """
    app = make_app(db, clock, tz, trusted, guard)
    app.middlewares.append(require_login)
    app[SITES_KEY] = tuple(sites)
    app[TITLE_KEY] = title
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", dashboard)
    app.router.add_get("/site/{site}", site_page)
    app.router.add_get("/export.csv", export_csv)
    app.router.add_get("/export.pdf", export_pdf)
    return app
