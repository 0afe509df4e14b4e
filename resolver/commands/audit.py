"""`lachan audit keygen|verify|report`: site keys, offline ledger checks, CSV/HTML reports."""

from __future__ import annotations

import sys
import time
from datetime import UTC, tzinfo
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from ..audit.keys import inline_public, key_id, load_public_key, write_keypair
from ..audit.record import parse_iso
from ..audit.report import BUCKETS, build_report, load_ledgers, render_csv
from ..audit.report_html import render_html
from ..audit.sitekeys import site_keys
from ..audit.verify import verify_ledger
from ..errors import AuditError, LachanError


def _fail(error: LachanError) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


def _zone(name: str) -> tzinfo:
    """UTC, or an IANA zone from the system's tz database (tzdata)."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AuditError(f"--timezone: unknown time zone {name!r} (an IANA name such as "
                         "Asia/Ho_Chi_Minh)") from None  # fmt: skip


def _ledger_paths(items: tuple[str, ...]) -> list[Path]:
    """Files as given; a directory stands for the ``*.jsonl`` files inside it."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        paths += sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return paths


def write_output(text: str, out: str | None) -> None:
    """Write to ``out`` or stdout (a file that cannot be written: one line, exit 1)."""
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(AuditError(f"--out {out}: cannot write: {exc.strerror}"))
    else:
        click.echo(text, nl=False)


@click.group()
def audit() -> None:
    """Signed audit ledger: keys, verification and reports."""


@audit.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for audit.key (mode 0600) and audit.pub.")  # fmt: skip
def keygen(out_dir: str) -> None:
    """Create a site's Ed25519 key pair; prints the inline public key for the site registry."""
    try:
        private, public = write_keypair(Path(out_dir))
        pub = load_public_key(public)
    except LachanError as exc:
        _fail(exc)
    click.echo(f"private key: {private} (mode 0600, keep it on the site)")
    click.echo(f"public key:  {public} (key id {key_id(pub)})")
    click.echo(f"registry:    public_key: {inline_public(pub)}")


@audit.command()
@click.argument("ledger", type=click.Path(dir_okay=False))
@click.option("--public-key", "key_spec", required=True, metavar="FILE|ed25519:B64",
              help="The site's public key (PEM file, or inline).")  # fmt: skip
@click.option("--expect-seq", type=click.IntRange(0), default=None, metavar="N",
              help="The last sequence number known to exist (from a collector or an earlier "
              "check): a ledger ending before it lost its tail.")  # fmt: skip
def verify(ledger: str, key_spec: str, expect_seq: int | None) -> None:
    """Check every signature and hash link; report the first broken line and exit 1."""
    try:
        result = verify_ledger(Path(ledger), load_public_key(key_spec), expect_seq)
    except LachanError as exc:
        _fail(exc)
    for notice in result.notices:
        click.echo(f"{ledger}: notice: {notice}", err=True)
    if result.problem:
        click.echo(f"{ledger}:{result.problem.line}: {result.problem.message}", err=True)
        click.echo(f"{ledger}: {len(result.records)} records valid before it", err=True)
        sys.exit(1)
    last = result.records[-1]
    click.echo(f"{ledger}: OK, {len(result.records)} records, site {last.site} "
               f"instance {last.instance}, signature and chain valid")  # fmt: skip
    allows = result.temporary_allows()
    if allows:
        counts = ", ".join(f"{category} {n}" for category, n in sorted(allows.items()))
        click.echo(f"{ledger}: temporary allows granted: {counts}")


@audit.command()
@click.argument("ledgers", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--from",
    "start",
    metavar="TIME",
    help="ISO date/time; without an offset, in --timezone (default: --to - 24h).",
)
@click.option(
    "--to",
    "end",
    metavar="TIME",
    help="ISO date/time, exclusive; without an offset, in --timezone (default: now).",
)
@click.option(
    "--timezone",
    "zone",
    metavar="ZONE",
    default="UTC",
    show_default=True,
    help="IANA zone whose hours and days make the buckets and in which times print, "
    "e.g. Asia/Ho_Chi_Minh.",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "html"]), default="csv")
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option(
    "--public-key",
    "keys",
    multiple=True,
    metavar="SITE=FILE|SITE=ed25519:B64",
    help="The public key of SITE (repeatable); a ledger is verified only with the key of the "
    "site its records name. A bare FILE is allowed when every ledger names one site.",
)
@click.option(
    "--registry",
    type=click.Path(exists=True, dir_okay=False),
    help="Site registry (lachan coverage's format): every site's registered public key.",
)
@click.option("--bucket", type=click.Choice(sorted(BUCKETS)),
              help="Time bucket (default: hour up to 3 days, else day).")  # fmt: skip
def report(
    ledgers: tuple[str, ...], start: str | None, end: str | None, fmt: str, out: str | None,
    keys: tuple[str, ...], registry: str | None, bucket: str | None, zone: str,
) -> None:  # fmt: skip
    """Per-site, per-category, per-period totals from ledgers (files or directories)."""
    now = int(time.time())
    try:
        tz = _zone(zone)
        to = parse_iso(end, "--to", tz) if end else now
        frm = parse_iso(start, "--from", tz) if start else to - 86400
        paths = _ledger_paths(ledgers)
        results = load_ledgers(paths, site_keys(keys, registry, paths))
        rep = build_report(results, frm, to, bucket, tz)
    except LachanError as exc:
        _fail(exc)
    for r in results:
        if not r.signed:
            click.echo(f"warning: {r.path}: no key for its site: unverified", err=True)
        if r.problem:
            click.echo(f"warning: {r.path}:{r.problem.line}: {r.problem.message}; "
                       f"only the {len(r.records)} records before it are counted", err=True)  # fmt: skip
    write_output(render_csv(rep) if fmt == "csv" else render_html(rep, now), out)
