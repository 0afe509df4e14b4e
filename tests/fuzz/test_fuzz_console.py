"""The console's and block page's HTTP handling fuzzed: seeded hostile requests over real
loopback sockets, logged in (with the session's own CSRF token half the time, so the forms'
handlers see the garbage too) and not. Every reply is a 2xx, 3xx or 4xx, never a 5xx or a
dropped connection, and nothing is logged as an error; the console still serves afterwards.

The request limits are raised for the run (tests/console/test_console_limits.py and
tests/integration/test_console.py cover them): the point here is the handlers behind them."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from aiohttp.test_utils import TestServer

from resolver import config
from resolver.console import (
    blockpage,
    pages,
    runner,  # noqa: F401 (as serve: aiohttp's 400s are not errors)
)
from resolver.console.accounts import set_password
from resolver.console.limits import Rate
from resolver.console.pages import make_app
from resolver.console.status import Sources
from resolver.console.web import Console
from resolver.state import build_state

REQUESTS = 2000  # per app; about 8 s on one core
UNLIMITED = Rate(1e9, 1e9)
PATHS = ["/", "/login", "/logout", "/activity", "/why", "/allows", "/allows/revoke",
         "/reviews", "/reviews/", "/reviews/0123abcd", "/review", "/x/../../etc/passwd",
         "/%00", "/%ff%fe", "//", "/why?name=", "/" + "a" * 3000]  # fmt: skip
FIELDS = ["csrf", "name", "profile", "duration", "reason", "user", "password", "action", "lang"]
VALUES = ["", "school", "under16", "nope", "30m", "7d", "8d", "-1h", "1e9", "permanent",
          "temporary", "dismiss", "188bet.vote", "*.example.org", "a..b", "xn--", "xn--zz",
          "Tiết học", "\u202e", "\x00", "%", "%%", "&", "=", "[::1]", "127.0.0.1:80",
          "a" * 300, "ư" * 100, "co-lan", "mat-khau-dai", "vi", "en", "zz"]  # fmt: skip
HOSTS = ["188bet.vote", "007win.com", "", "127.0.0.1", "[::1]:80", "a..b", "xn--", "ư.vn",
         "x" * 300, "EXAMPLE.ORG.", "*.x", "1.2.3.4:99999", "[zz]", "a:b:c"]  # fmt: skip


def _value(rng: random.Random) -> bytes:
    if rng.random() < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    return rng.choice(VALUES).encode()


def _body(rng: random.Random, csrf: str) -> bytes:
    kind = rng.random()
    if kind < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    fields = [(rng.choice(FIELDS).encode(), _value(rng)) for _ in range(rng.randrange(0, 7))]
    if rng.random() < 0.5:
        fields.append((b"csrf", csrf.encode()))
    return b"&".join(quote_from_bytes(k).encode() + b"=" + quote_from_bytes(v).encode()
                     for k, v in fields)  # fmt: skip


def request(rng: random.Random, cookie: str, csrf: str) -> bytes:
    """One hostile request: method, path, query, headers and body chosen at random."""
    method = rng.choice([b"GET", b"POST", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS"])
    path = rng.choice(PATHS).encode()
    if rng.random() < 0.5:
        path += (
            b"?"
            + quote_from_bytes(rng.choice(FIELDS).encode()).encode()
            + b"="
            + quote_from_bytes(_value(rng)).encode()
        )
    body = _body(rng, csrf) if method == b"POST" else b""
    headers = [b"Host: " + rng.choice(HOSTS).encode()]
    if rng.random() < 0.7:
        headers.append(b"Cookie: lachan_session=" + (cookie.encode() if rng.random() < 0.8
                       else _value(rng).replace(b";", b"")) + b"; lang=" + _value(rng).replace(
                           b";", b""))  # fmt: skip
    kind = rng.choice(
        [
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"text/plain",
            b"application/x-www-form-urlencoded; charset=latin-1",
        ]
    )
    headers.append(b"Content-Type: " + kind)
    # A declared length past the body would leave the server waiting for the rest, as it should.
    length = len(body) if rng.random() < 0.9 else rng.randrange(0, len(body) + 1)
    headers.append(b"Content-Length: " + str(length).encode())
    headers.append(b"Connection: close")
    headers = [h.replace(b"\r", b"").replace(b"\n", b"") for h in headers]
    return method + b" " + path + b" HTTP/1.1\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body


async def exchange(port: int, data: bytes) -> bytes:
    """The reply's first bytes. No half-close: aiohttp drops the reply of a client that
    shuts its sending side (browsers never do), so the request asks to close instead."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(100), 10)
    finally:
        writer.close()


async def fetch(port: int, data: bytes) -> str:
    """The whole reply to one request (the connection closed after it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    text = (await reader.read()).decode("utf-8", "replace")
    writer.close()
    return text


async def log_in(port: int) -> str:
    """A teacher's session cookie, through the login form as a browser sends it."""
    page = await fetch(port, b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    login_cookie = re.search(r"lachan_login=([^;]+);", page)
    assert token and login_cookie, page[:300]
    form = f"csrf={token.group(1)}&user=co-lan&password=mat-khau-dai".encode()
    done = await fetch(port, b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       b"Cookie: lachan_login=" + login_cookie.group(1).encode() + b"\r\n"
                       b"Content-Type: application/x-www-form-urlencoded\r\n"
                       b"Content-Length: " + str(len(form)).encode() + b"\r\n\r\n" + form)  # fmt: skip
    session = re.search(r"lachan_session=([^;]+);", done)
    assert session, done[:300]
    return session.group(1)


@pytest.mark.parametrize("which", ["console", "block page"])
def test_hostile_requests_get_4xx_never_a_5xx_or_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    which: str,
) -> None:  # fmt: skip
    for module, names in ((pages, ("CONSOLE_PER_ADDRESS", "CONSOLE_TOTAL")),
                          (blockpage, ("BLOCKPAGE_PER_ADDRESS", "BLOCKPAGE_TOTAL"))):  # fmt: skip
        for name in names:
            monkeypatch.setattr(module, name, UNLIMITED)
    cfg = config.parse(f'lists: {{enabled: false, state_dir: "{tmp_path}"}}\n'
                       'console: {listen: "127.0.0.1:0", networks: [127.0.0.1/32]}\n', "t")  # fmt: skip
    assert cfg.console is not None
    set_password(tmp_path / "console-users.json", "co-lan", "mat-khau-dai", "teacher")
    state = build_state(cfg)
    console = Console(cfg.console, Sources(lambda: cfg, lambda: state, dict), tmp_path)
    app = make_app(console) if which == "console" else blockpage.make_blockpage_app(console)
    rng = random.Random(18 if which == "console" else 80)

    async def main() -> dict[int, int]:
        async with TestServer(app, host="127.0.0.1") as server:
            port = server.port
            assert port is not None
            cookie = ""
            if which == "console":
                cookie = await log_in(port)
            csrf = console.sessions.get(cookie).csrf if cookie else "x"  # type: ignore[union-attr]
            codes: dict[int, int] = {}
            for _ in range(REQUESTS):
                if cookie and console.sessions.get(cookie) is None:  # a fuzzed /logout ended it
                    cookie = await log_in(port)
                    csrf = console.sessions.get(cookie).csrf  # type: ignore[union-attr]
                data = request(rng, cookie, csrf)
                reply = await exchange(port, data)
                assert reply.startswith(b"HTTP/1."), (data[:300], reply)
                code = int(reply[9:12])
                assert code < 500, (data[:300], reply)
                codes[code] = codes.get(code, 0) + 1
            alive = await exchange(
                port, b"GET /login HTTP/1.1\r\nHost: 188bet.vote\r\nConnection: close\r\n\r\n"
            )
            assert alive.startswith(b"HTTP/1.1 200"), alive
            return codes

    with caplog.at_level(logging.WARNING):
        codes = asyncio.run(main())
    print(which, sorted(codes.items()))  # shown with -s: how deep the run went
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[:3]
    assert sum(n for c, n in codes.items() if c < 300) > REQUESTS // 40, codes  # reached pages
    assert sum(n for c, n in codes.items() if 400 <= c < 500) > REQUESTS // 5, codes
