"""The block page: any Host, any path, a page in Vietnamese and English; a review button.

Blocked A/AAAA answers point here (``block_page_address``). The page looks the Host up like
the server would for the client's profile, so it can say the category; the address is used
for that lookup only and never stored. A review request keeps name, category, profile, time.
"""

from __future__ import annotations

from aiohttp import web

from ..allows import AllowError, normalise_site
from .actions import category_of
from .i18n import translator
from .limits import BLOCKPAGE_PER_ADDRESS, BLOCKPAGE_TOTAL, RequestLimiter, limit_requests
from .names import category_names
from .web import CONSOLE, MAX_BODY, TEMPLATES, Console, posted


class Filings:
    """At most ``PER_MINUTE`` review requests a minute from the whole network: a script
    looping on the button fills neither the disk nor the staff's queue."""

    PER_MINUTE = 30

    def __init__(self) -> None:
        self._times: list[float] = []

    def admit(self, now: float) -> bool:
        self._times = [t for t in self._times if t > now - 60]
        if len(self._times) >= self.PER_MINUTE:
            return False
        self._times.append(now)
        return True


NAMES = web.AppKey("category_names", dict)
FILINGS = web.AppKey("filings", Filings)


def make_blockpage_app(console: Console) -> web.Application:
    limiter = RequestLimiter(BLOCKPAGE_PER_ADDRESS, BLOCKPAGE_TOTAL, console.clock)
    app = web.Application(middlewares=[limit_requests(limiter)], client_max_size=MAX_BODY)
    app[CONSOLE] = console
    app[NAMES] = category_names(console.sources.config())
    app[FILINGS] = Filings()
    app.router.add_post("/review", review)
    app.router.add_route("GET", "/{tail:.*}", page)
    app.router.add_route("HEAD", "/{tail:.*}", page)
    return app


def _lookup(request: web.Request, host: str) -> tuple[str, str, str]:
    """(name, category, profile) of the Host asked, for the asking client's profile."""
    console: Console = request.app[CONSOLE]
    state = console.sources.state()
    profile = state.clients.profile_for(request.remote or "0.0.0.0", ("", 0)).name
    try:
        name = normalise_site(host.rsplit(":", 1)[0] if not host.endswith("]") else host)
    except AllowError:
        return "", "", profile
    return name, category_of(state, profile, name, console.clock()), profile


def _render(request: web.Request, host: str, category: str, profile: str, sent: bool,
            code: int) -> web.Response:  # fmt: skip
    names = request.app[NAMES].get(category, (category, category))
    page = TEMPLATES.get_template("blockpage.html").render(
        vi=translator("vi"), en=translator("en"), host=host, category_vi=names[0],
        category_en=names[1], profile=profile, sent=sent, blocked=bool(category),
    )  # fmt: skip
    response = web.Response(text=page, status=code, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"  # the block may be lifted in minutes
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"  # the page echoes the Host it was asked for: nothing in it may run or load
    )
    return response


async def page(request: web.Request) -> web.Response:
    name, category, profile = _lookup(request, request.host)
    return _render(request, name or "?", category, profile, False, 200 if name else 400)


async def review(request: web.Request) -> web.Response:
    form = await posted(request)
    asked = form.get("name")
    name, category, profile = _lookup(request, asked if isinstance(asked, str) else "")
    if not name or not category:
        return _render(request, name or "?", category, profile, False, 400)  # blocked only
    console: Console = request.app[CONSOLE]
    if not request.app[FILINGS].admit(console.clock()):
        return _render(request, name, category, profile, False, 429)
    console.reviews.file(name, category, profile)
    console.audit.write("block-page", "review-request", name=name, category=category,
                        profile=profile)  # fmt: skip
    return _render(request, name, category, profile, True, 200)
