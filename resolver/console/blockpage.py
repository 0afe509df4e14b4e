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
from .web import CONSOLE, MAX_BODY, TEMPLATES, Console


def make_blockpage_app(console: Console) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[CONSOLE] = console
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


def _render(host: str, category: str, profile: str, sent: bool, code: int) -> web.Response:
    page = TEMPLATES.get_template("blockpage.html").render(
        vi=translator("vi"), en=translator("en"), host=host, category=category,
        profile=profile, sent=sent, blocked=bool(category),
    )  # fmt: skip
    response = web.Response(text=page, status=code, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"  # the block may be lifted in minutes
    return response


async def page(request: web.Request) -> web.Response:
    name, category, profile = _lookup(request, request.host)
    return _render(name or "?", category, profile, False, 200 if name else 400)


async def review(request: web.Request) -> web.Response:
    form = await request.post()
    asked = form.get("name")
    name, category, profile = _lookup(request, asked if isinstance(asked, str) else "")
    if not name or not category:
        return _render(name or "?", category, profile, False, 400)  # only blocked names queue
    console: Console = request.app[CONSOLE]
    console.reviews.file(name, category, profile)
    console.audit.write("block-page", "review-request", name=name, category=category,
                        profile=profile)  # fmt: skip
    return _render(name, category, profile, True, 200)
