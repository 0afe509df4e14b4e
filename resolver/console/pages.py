"""The console's aiohttp application and its pages: each handler reads its form, calls
actions/status, renders."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiohttp import web

from ..allows import AllowError
from ..config import Config
from . import actions, status
from .i18n import translator
from .limits import CONSOLE_PER_ADDRESS, CONSOLE_TOTAL, RequestLimiter, limit_requests
from .names import category_names
from .sessions import same_token
from .settings import never_categories
from .web import (
    CATEGORY_NAMES,
    CONSOLE,
    COOKIE,
    LANG,
    LOGIN_CSRF,
    MAX_BODY,
    Console,
    account_of,
    console_of,
    form_of,
    guard,
    login_check,
    refused,
    render,
)

LOGIN_COOKIE = "lachan_login"  # double-submit CSRF token of the login form (no session yet)


def make_app(console: Console) -> web.Application:
    # The rate limit first: it is the cheapest check and it bounds the work of all the others.
    limiter = RequestLimiter(CONSOLE_PER_ADDRESS, CONSOLE_TOTAL, console.clock)
    app = web.Application(middlewares=[limit_requests(limiter), guard], client_max_size=MAX_BODY)
    app[CONSOLE] = console
    app[CATEGORY_NAMES] = category_names(console.sources.config())
    add_routes(app)
    return app


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", status_page)
    app.router.add_get("/activity", activity_page)
    app.router.add_get("/why", why_page)
    app.router.add_get("/allows", allows_page)
    app.router.add_post("/allows", allow_post)
    app.router.add_post("/allows/revoke", revoke_post)
    app.router.add_get("/reviews", reviews_page)
    app.router.add_post("/reviews/{id}", review_post)


async def login_page(request: web.Request, message: str = "", code: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    request[LOGIN_CSRF] = token
    response = render(request, "login.html", code, message=message)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict")
    return response


async def login(request: web.Request) -> web.Response:
    form = await form_of(request)
    t = translator(request[LANG])
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not same_token(expected, form.get("csrf", "")):
        return await login_page(request, t("bad_request"), 403)
    console = console_of(request)
    sid, why = await login_check(console, request.remote or "", form.get("user", ""),
                           form.get("password", ""))  # fmt: skip
    if not sid:
        return await login_page(request, t(why), 429 if why == "too_many" else 401)
    console.audit.write(form["user"], "login")
    response = web.HTTPSeeOther("/")
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict",
                        max_age=console.settings.session_minutes * 60)  # fmt: skip
    response.del_cookie(LOGIN_COOKIE)
    raise response


async def logout(request: web.Request) -> web.Response:
    console_of(request).sessions.close(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE)
    raise response


async def status_page(request: web.Request) -> web.Response:
    console = console_of(request)
    config, state = console.sources.config(), console.sources.state()
    snapshot = console.sources.snapshot()
    texts = await asyncio.get_running_loop().run_in_executor(None, status.canary, config)
    records = status.ledger_records(config.audit.ledger)
    built = state.index_built_at
    age = (
        f"{int((console.clock() - built) // 60)} min"
        if built
        else translator(request[LANG])("unknown")
    )
    info = getattr(state.index, "info", None)
    lists = status.list_rows(info.sources if info else {}, snapshot, console.clock())
    return render(
        request, "status.html", on=bool(texts) or status.total(snapshot, "workers") > 0,
        profiles=sorted(state.profiles), live=status.live_activity(snapshot), index_age=age,
        lists=lists, upstreams=status.upstream_rows(config, snapshot), canary=texts,
        encrypted=status.encrypted_endpoints(config),
        ledger=records[-1] if records else None, ack=_ack_text(request, config, records),
    )  # fmt: skip


def _ack_text(request: web.Request, config: Config, records: list[dict[str, Any]]) -> str:
    key, values = status.province_ack(config.audit.ledger, records[-1] if records else None)
    if "at" in values:
        values = {**values, "at": console_of(request).time_text(values["at"])}
    return translator(request[LANG])(key, **values)


async def activity_page(request: web.Request) -> web.Response:
    console = console_of(request)
    config = console.sources.config()
    records = status.ledger_records(config.audit.ledger)
    if records:
        spans = status.ledger_activity(records, console.zone(), console.clock())
        shown = [("today", spans["today"]), ("week", spans["week"])]
    else:  # no ledger: the live counters, without hours (they are not kept per hour)
        live = status.live_activity(console.sources.snapshot())
        shown = [("since_start", status.Activity(live["queries"], live["blocks"]))]
    week = status.week_start(console.zone(), console.clock())
    # Every allow, from the console or `lachan allow`, counted as the ledger counts them.
    allows = console.store.granted(week, float("inf"))
    return render(request, "activity.html", spans=shown, allows=sorted(allows.items()))


async def why_page(request: web.Request) -> web.Response:
    console = console_of(request)
    state = console.sources.state()
    name = request.query.get("name", "")[:253]
    profile = request.query.get("profile", state.clients.default.name)
    lines, message, verdict = [], "", ("", "")
    if name:
        try:
            lines = actions.explain_lines(state, profile, name, console.clock())
            verdict = actions.verdict(state, profile, name, console.clock())
        except AllowError as exc:
            message = refused(request, exc)
    return render(request, "why.html", 400 if message else 200, name=name, profile=profile,
                  profiles=sorted(state.profiles), lines=lines, message=message,
                  verdict=verdict[0], detail=verdict[1])  # fmt: skip


async def allows_page(request: web.Request, message: str = "", code: int = 200) -> web.Response:
    console = console_of(request)
    shown = [
        {"name": a.name, "profile": a.profile, "until_text": console.time_text(a.until),
         "by": a.by, "reason": a.reason}
        for a in sorted(console.store.in_force(), key=lambda a: a.until)
    ]  # fmt: skip
    return render(request, "allows.html", code, allows=shown, message=message, name="",
                  profiles=sorted(console.sources.state().profiles))  # fmt: skip


async def allow_post(request: web.Request) -> web.Response:
    console = console_of(request)
    form = await form_of(request)
    user = account_of(request).user
    try:
        actions.grant(console.store, console.audit, console.sources.state(), form, user,
                      console.clock(), never_categories(console.sources.config().console))  # fmt: skip
    except AllowError as exc:
        return await allows_page(request, refused(request, exc), 400)
    return await allows_page(request, translator(request[LANG])("done"))


async def revoke_post(request: web.Request) -> web.Response:
    console = console_of(request)
    form = await form_of(request)
    try:
        actions.revoke(console.store, console.audit, form.get("name", ""),
                       form.get("profile", ""), account_of(request).user)  # fmt: skip
    except AllowError as exc:
        return await allows_page(request, refused(request, exc), 400)
    return await allows_page(request, translator(request[LANG])("done"))


async def reviews_page(request: web.Request, message: str = "", code: int = 200) -> web.Response:
    console = console_of(request)
    shown = [
        {"id": r.id, "name": r.name, "category": r.category, "profile": r.profile,
         "at_text": console.time_text(r.at)}
        for r in console.reviews.pending()
    ]  # fmt: skip
    return render(request, "reviews.html", code, reviews=shown, message=message)


async def review_post(request: web.Request) -> web.Response:
    from .review_actions import decide_review  # the accept/dismiss rules

    message, code = decide_review(console_of(request), account_of(request),
                                  request.match_info["id"], await form_of(request))  # fmt: skip
    return await reviews_page(request, translator(request[LANG])(message[0]) + message[1], code)
