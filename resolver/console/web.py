"""The console's frame: shared state, rendering and the guard every page passes through.

The pages (login, status, activity, explain, allows, reviews) and ``make_app`` are in
pages.py, which builds on this module. Handlers only read the form and render; decisions live in actions.py, sessions.py and
status.py. Every POST carries the session's CSRF token; every page needs a session, and
the whole console answers only addresses in ``console.networks``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from ..allows import AllowError, AllowStore
from ..errors import ConfigError
from .accounts import Account, check_password
from .audit_log import AuditLog
from .i18n import lang_of, translator
from .names import named
from .reviews import ReviewQueue
from .sessions import LoginLimiter, Session, Sessions, csrf_ok
from .settings import ConsoleSettings, allowed_network, users_path
from .status import Sources

log = logging.getLogger(__name__)
COOKIE = "lachan_session"
MAX_BODY = 16 * 1024  # forms are a few fields; anything bigger is refused with 413
BODY_DEADLINE = 10.0  # seconds to send a form once its headers are in (as connections.py)
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("resolver.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Console:
    """Everything the handlers share; one per process that hosts the console."""

    settings: ConsoleSettings
    sources: Sources
    state_dir: Path
    clock: Callable[[], float] = time.time
    store: AllowStore = field(init=False)
    audit: AuditLog = field(init=False)
    reviews: ReviewQueue = field(init=False)
    sessions: Sessions = field(init=False)
    limiter: LoginLimiter = field(init=False)
    verifying: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        if self.settings.users_file is None:
            users = users_path(self.settings, self.state_dir)
            self.settings = dataclasses.replace(self.settings, users_file=users)
        self.store = AllowStore(self.state_dir, self.clock)
        self.audit = AuditLog(self.state_dir, self.clock)
        self.reviews = ReviewQueue(self.state_dir, self.clock)
        self.sessions = Sessions(self.settings.session_minutes, self.clock)
        self.limiter = LoginLimiter(self.clock)

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.sources.config().site.timezone)

    def time_text(self, when: float) -> str:
        return f"{datetime.fromtimestamp(when, self.zone()):%Y-%m-%d %H:%M %Z}"


CONSOLE = web.AppKey("console", Console)
# Category id -> (Vietnamese, English) name, read from the catalogue when the app is made.
CATEGORY_NAMES = web.AppKey("category_names", dict)
LANG = web.RequestKey("lang", str)
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
LOGIN_CSRF = web.RequestKey("login_csrf", str)  # the login form's token, before any session


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    lang = request[LANG]
    session: Session | None = request.get(SESSION)
    page = TEMPLATES.get_template(template).render(
        lang=lang, t=translator(lang), user=session.account.user if session else "",
        role=session.account.role if session else "",
        category=lambda cid: named(request.app.get(CATEGORY_NAMES, {}), cid, lang),
        csrf=session.csrf if session else request.get(LOGIN_CSRF, ""),
        message=values.pop("message", ""), **values,
    )  # fmt: skip
    response = web.Response(text=page, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    if request.query.get("lang") in ("vi", "en"):
        response.set_cookie("lang", request[LANG], samesite="Strict", httponly=True)
    return response


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Network, language, session and CSRF checks before any page; errors stay 4xx."""
    console: Console = request.app[CONSOLE]
    request[LANG] = lang_of(request.query.get("lang"), request.cookies.get("lang"))
    if not allowed_network(console.settings, request.remote):
        return render(
            request, "login.html", 403, message=translator(request[LANG])("not_from_here")
        )
    session = request[SESSION] = console.sessions.get(request.cookies.get(COOKIE))
    if request.path not in ("/login",) and session is None:
        if request.method == "POST":
            raise web.HTTPForbidden(text="log in first")
        raise web.HTTPSeeOther("/login")
    if request.method == "POST" and session is not None:
        form = await posted(request)
        if not csrf_ok(session, _text(form, "csrf")):
            raise web.HTTPForbidden(text="bad or missing CSRF token")
    return await handler(request)


def _text(form: Any, key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


async def posted(request: web.Request) -> Any:
    """The POSTed form, or 400: aiohttp raises ValueError on a body that is not text in its
    charset (raw bytes sent as urlencoded) or a multipart body without its boundary, and
    LookupError on an unknown charset; neither may become a 500 and a traceback. A body not
    all sent within ``BODY_DEADLINE`` seconds (a slow POST holding the connection) is 408."""
    try:
        async with asyncio.timeout(BODY_DEADLINE):
            return await request.post()
    except (ValueError, LookupError) as exc:
        raise web.HTTPBadRequest(text=f"unreadable form: {type(exc).__name__}") from None
    except TimeoutError:
        too_slow = getattr(request.protocol, "too_slow", None)  # counted when guarded
        if too_slow is not None:
            too_slow()
        raise web.HTTPRequestTimeout(text="the form was sent too slowly") from None


async def form_of(request: web.Request) -> dict[str, str]:
    """The POSTed form's text fields (file uploads are ignored)."""
    form = await posted(request)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def account_of(request: web.Request) -> Account:
    """The logged-in account (the guard lets no page through without one)."""
    session = request.get(SESSION)
    if session is None:
        raise web.HTTPForbidden(text="log in first")
    return session.account


def console_of(request: web.Request) -> Console:
    console: Console = request.app[CONSOLE]
    return console


def refused(request: web.Request, error: AllowError) -> str:
    return f"{translator(request[LANG])('refused')}: {error}"


async def login_check(console: Console, source: str, user: str, password: str) -> tuple[str, str]:
    """(session id, "") or ("", the text key saying why not). The rate limit is checked
    first, and argon2 (tens of milliseconds of CPU by design) runs in a thread: in a
    single-process server the console shares the event loop with DNS."""
    async with console.verifying:  # one at a time: the limit counts each failure in order
        if console.limiter.blocked(source):
            return "", "too_many"
        users = users_path(console.settings, console.state_dir)
        loop = asyncio.get_running_loop()
        try:
            account = await loop.run_in_executor(None, check_password, users, user, password)
        except ConfigError as exc:  # an unreadable users file: the operator's to fix
            log.error("console login: %s", exc)
            return "", "bad_login"
        if account is None:
            console.limiter.failed(source)
            return "", "bad_login"
    return console.sessions.open(account), ""
