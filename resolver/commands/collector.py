"""`lachan collector serve|enroll|status|user`: the province's collector of site ledgers."""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from ..audit.keys import load_public_key
from ..audit.label import LABEL
from ..audit.record import parse_iso
from ..collector.db import Database
from ..errors import ConfigError, LachanError
from .audit import _zone

_DB = click.option("--db", required=True, metavar="URL",
                   help="sqlite:///PATH (embedded) or postgresql://USER@HOST/DB.")  # fmt: skip
_REGISTRY = click.option("--registry", required=True, type=click.Path(exists=True, dir_okay=False),
                         help="Site registry YAML (lachan coverage's format, with district).")  # fmt: skip


def _fail(error: LachanError) -> NoReturn:
    for line in error.problems if isinstance(error, ConfigError) else [str(error)]:
        click.echo(f"error: {line}", err=True)
    sys.exit(1)


def _open(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LachanError(f"--listen {text!r}: expected HOST:PORT")
    return host, int(port)


@click.group()
def collector() -> None:
    """The province's collector: receives sites' signed ledgers and shows coverage."""


@collector.command()
@_DB
@click.option("--listen", default="127.0.0.1:8470", show_default=True, metavar="HOST:PORT")
@_REGISTRY
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              help="PEM certificate chain (else run behind a TLS reverse proxy).")  # fmt: skip
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option("--timezone", default="Asia/Ho_Chi_Minh", show_default=True,
              help="The province's time zone for pages and exports.")  # fmt: skip
@click.option("--title", default="CÔNG AN TỈNH", show_default=True,
              help="The province's title block on pages and the PDF.")  # fmt: skip
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, metavar="CIDR",
              help="A TLS reverse proxy's address or network (repeatable): only from these is"
                   " X-Forwarded-Proto: https believed (cookies then Secure) and"
                   " X-Forwarded-For taken as the client for the push limits.")  # fmt: skip
@click.option("--failed-pushes", default="20/30", show_default=True, metavar="N/SECONDS",
              help="Failed push requests allowed per source address: N at once, then one"
                   " every SECONDS; past that the API answers 429 with Retry-After (a site"
                   " may fail six times as often, from all addresses together).")  # fmt: skip
def serve(db: str, listen: str, registry: str, tls_cert: str | None, tls_key: str | None,
          timezone: str, title: str, trusted_proxies: tuple[str, ...],
          failed_pushes: str) -> None:  # fmt: skip
    """Serve the push API and the dashboard; registry keys are enrolled at start."""
    from aiohttp import web

    from ..collector.ingest import enroll
    from ..collector.limits import PushGuard, parse_rate
    from ..collector.proxy import parse_networks
    from ..collector.web import make_web_app
    from ..coverage.registry import load_registry

    try:
        host, port = _listen(listen)
        trusted = parse_networks(trusted_proxies)
        guard = PushGuard(parse_rate(failed_pushes))
        sites = load_registry(Path(registry))
        database = _open(db)
        for site in sites:
            if site.public_key is not None:
                enroll(database, site.id, site.public_key, int(time.time()))
        context = _tls(tls_cert, tls_key)
        app = make_web_app(database, sites, _zone(timezone), title, trusted=trusted,
                           guard=guard)  # fmt: skip
    except LachanError as exc:
        _fail(exc)
    try:
        web.run_app(app, host=host, port=port, ssl_context=context, print=None)
    except OSError as exc:  # the port is taken, or the address is not this host's
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        _fail(LachanError(f"--listen {listen}: cannot listen: {why}"))


def _tls(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise LachanError(f"--tls-cert {cert}: cannot load: {exc}") from None
    return context


@collector.command()
@click.argument("site")
@click.option("--public-key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The site's audit.pub (PEM or ed25519:<base64>).")  # fmt: skip
@_DB
def enroll(site: str, public_key: str, db: str) -> None:
    """Accept SITE's ledger records signed by this key from now on."""
    from ..collector.ingest import enroll as do_enroll

    try:
        if not LABEL.fullmatch(site):
            raise LachanError(f"SITE {site!r}: must be lower-case [a-z0-9_-]")
        do_enroll(_open(db), site, load_public_key(Path(public_key)), int(time.time()))
    except LachanError as exc:
        _fail(exc)
    click.echo(f"{site}: enrolled")


@collector.command()
@_DB
@_REGISTRY
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per site.")
@click.option("--timezone", default="Asia/Ho_Chi_Minh", show_default=True)
@click.option("--now", metavar="TIME", help="Judge as of this ISO time (default: now).")
def status(db: str, registry: str, as_json: bool, timezone: str, now: str | None) -> None:
    """Per registered site: covered, chain (valid|broken|rewritten|silent|never), last seq."""
    from ..collector.views import statuses
    from ..coverage.registry import load_registry

    try:
        tz = _zone(timezone)
        moment = parse_iso(now, "--now", tz) if now else int(time.time())
        rows = statuses(_open(db), load_registry(Path(registry)), moment)
    except LachanError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps([s.as_json(tz) for s in rows], ensure_ascii=False, indent=1))
        return
    for s in rows:
        mark = "covered" if s.covered else f"NOT covered ({s.reason})"
        click.echo(f"{s.site.id}\t{s.chain}\tseq={s.last_seq}\t{mark}")


@collector.group()
def user() -> None:
    """Dashboard accounts: auditors (may export) and viewers."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["auditor", "viewer"]))
@_DB
def user_add(name: str, role: str, db: str) -> None:
    """Create NAME (or set its password and role); the password is read from stdin or asked."""
    from ..collector.auth import add_user

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        add_user(_open(db), name, role, password)
    except LachanError as exc:
        _fail(exc)
    click.echo(f"{name}: {role}")
