"""``lachan lists``: update, compile, check, lookup and stats for the categorised blocklists."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from resolver import config
from resolver.errors import LachanError
from resolver.lists.catalogue import Catalogue, load_catalogue, with_extra
from resolver.lists.coverage import DEFAULT_SAMPLE, DEFAULT_SEED
from resolver.lists.coverage_report import measure, to_json
from resolver.lists.coverage_text import markdown, render
from resolver.lists.fetch import FetchPolicy, read_meta, refresh
from resolver.lists.index import open_index
from resolver.lists.match import ListAction
from resolver.lists.parsers import FORMATS, detect_format, parse
from resolver.lists.snapshot import compile_index, ensure_index, read_text
from resolver.settings import default_state_dir

_catalogue_option = click.option(
    "--catalogue",
    "catalogue_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Category catalogue (default: the bundled blocklists/catalogue.yaml).",
)
_state_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Downloads and compiled indexes (default: $LACHAN_STATE_DIR or ~/.cache/lachan).",
)


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    ctx.meta["lachan_config"] = value


# --config takes the catalogue and state dir from a lachan.yaml's lists section (what the
# server uses), so the refresh timer and the server always agree on the files.
_config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    expose_value=False,
    callback=_remember_config,
    help="lachan.yaml whose lists section gives the catalogue and state dir.",
)


def _run(fn: Callable[[], None]) -> None:
    """User mistakes end as one clear line, never a traceback."""
    try:
        fn()
    except LachanError as exc:
        raise click.ClickException(str(exc)) from None


def _setup(catalogue_path: Path | None, state_dir: Path | None) -> tuple[Catalogue, Path]:
    config_path = click.get_current_context().meta.get("lachan_config")
    if config_path:
        settings = config.load(config_path).lists
        catalogue_path = catalogue_path or settings.catalogue
        state_dir = state_dir or settings.state_dir
        catalogue = with_extra(  # the site's own lists are updated with the catalogue's
            load_catalogue(catalogue_path),
            settings.extra_sources,
            f"{config_path}: lists.extra_sources",
        )
        return catalogue, Path(state_dir or default_state_dir())
    return load_catalogue(catalogue_path), Path(state_dir or default_state_dir())


@click.group("lists")
def lists() -> None:
    """Categorised blocklists: refresh, compile, inspect."""


@lists.command("update")
@_catalogue_option
@_config_option
@_state_option
@click.option("--force", is_flag=True, help="Fetch every source even if it is not due.")
@click.option("--source", "sources", multiple=True, help="Only this source id (repeatable).")
@click.option(
    "--max-shrink",
    type=float,
    default=0.5,
    show_default=True,
    help="Reject a download that lost more than this share of entries "
    "against the largest copy confirmed good in the last 30 days (or the bundled copy).",
)
@click.option(
    "--deadline",
    type=click.FloatRange(1, 3600),
    default=300.0,
    show_default=True,
    help="Seconds for the whole run; sources not started by then fail.",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Sources fetched at once.",
)
def update(
    catalogue_path: Path | None,
    state_dir: Path | None,
    force: bool,
    sources: tuple[str, ...],
    max_shrink: float,
    deadline: float,
    parallel: int,
) -> None:
    """Download URL sources in parallel (keeping last good copies on failure), then recompile.

    One line per source: its outcome, the full reason of a failure and the copy in force
    (downloaded, last good or bundled). Exit status 1 when some due source failed, 2 when
    all of them did.
    """
    policy = FetchPolicy(max_shrink=max_shrink, deadline=deadline, workers=parallel)

    def go() -> int:
        cat, state = _setup(catalogue_path, state_dir)
        report = refresh(
            cat,
            state,
            policy=policy,
            only=sources or None,
            force=force,
            on_result=lambda r: click.echo(r.line()),
        )
        path = ensure_index(cat, state)
        click.echo(f"index: {path}")
        click.echo(", ".join(f"{k}={v}" for k, v in sorted(report.counts.items())))
        return report.exit_status

    status = 0

    def run() -> None:
        nonlocal status
        status = go()

    _run(run)
    if status:
        raise SystemExit(status)


@lists.command("compile")
@_catalogue_option
@_config_option
@_state_option
def compile_(catalogue_path: Path | None, state_dir: Path | None) -> None:
    """Compile every source into a new index file and print its figures."""

    def go() -> None:
        cat, state = _setup(catalogue_path, state_dir)
        t0 = time.perf_counter()
        path = compile_index(cat, state)
        took = time.perf_counter() - t0
        info = open_index(path).info
        size = path.stat().st_size
        keys = info.counts["keys"]
        click.echo(
            f"{path}: {keys} names, {size} bytes ({size / max(keys, 1):.1f} B/name), "
            f"{info.counts['rules']} rules, compiled in {took:.2f}s"
        )

    _run(go)


@lists.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="List format (default: guessed from the content).",
)
@click.option("--limit", type=int, default=0, help="Print at most this many problems (0: all).")
def check(file: Path, fmt: str | None, limit: int) -> None:
    """Parse FILE and print every rejected or skipped line with its line number."""
    try:
        text = read_text(file)
    except LachanError as exc:
        raise click.ClickException(str(exc)) from None
    fmt = fmt or detect_format(text)
    result = parse(text, fmt)
    shown = result.problems if limit <= 0 else result.problems[:limit]
    for p in shown:
        click.echo(f"{file}:{p.line_no}: {p.reason}: {p.text.strip()}")
    click.echo(
        f"{file}: format {fmt}: {result.entries} entries, "
        f"{len(result.problems)} rejected or skipped lines"
    )


@lists.command("lookup")
@click.argument("name")
@_catalogue_option
@_config_option
@_state_option
def lookup(name: str, catalogue_path: Path | None, state_dir: Path | None) -> None:
    """Show which categories, sources and rules match NAME, and which rule won."""

    def go() -> None:
        cat, state = _setup(catalogue_path, state_dir)
        index = open_index(ensure_index(cat, state), memo_size=0)
        query = name.strip().lower().rstrip(".")
        chain = index.explain(query)
        if not chain:
            click.echo(f"{query}: not listed")
            return
        for i, (_rule, slot, m) in enumerate(chain):
            mark = "WINS" if i == 0 else "    "
            click.echo(
                f"{mark} {m.rule:40} {m.action.value:8} {','.join(sorted(m.categories)) or '-':20} "
                f"source={m.source} ({'listed name' if slot == 'self' else 'parent rule'})"
            )
        never = sorted(chain[0][2].categories & cat.never_block)
        if never and chain[0][2].action is not ListAction.ALLOW:
            others = sorted(chain[0][2].categories - cat.never_block)
            click.echo(
                f"never-block: {', '.join(never)}: no profile blocks it by keyword"
                + (f" or by {', '.join(others)}" if others else "")
                + " (a profile's security categories still do)"
            )

    _run(go)


@lists.command("stats")
@_catalogue_option
@_config_option
@_state_option
def stats(catalogue_path: Path | None, state_dir: Path | None) -> None:
    """Per source and category: entries, rejected lines, last success and age."""

    def go() -> None:
        cat, state = _setup(catalogue_path, state_dir)
        info = open_index(ensure_index(cat, state), memo_size=0).info
        now = time.time()
        totals: dict[str, int] = {}
        click.echo(
            f"{'source':32} {'category':14} {'entries':>8} {'rejected':>8}  last success (age)"
        )
        for src in cat.sources:
            row: dict[str, Any] = info.sources.get(src.id, {})
            meta = read_meta(state, src.id)
            entries = int(row.get("entries", 0))
            totals[src.category] = totals.get(src.category, 0) + entries
            click.echo(
                f"{src.id:32} {src.category:14} {entries:8} {int(row.get('rejected', 0)):8}  "
                f"{_age(meta.get('last_success'), now, 'bundled' if row else 'none')}"
            )
        click.echo("")
        for cid in cat.category_ids:
            click.echo(f"{cid:32} {totals.get(cid, 0):8} entries")
        click.echo(
            f"index {info.path.name}: {info.counts['keys']} names, built "
            f"{_age(info.built_at, now, '?')}"
        )

    _run(go)


def _age(when: Any, now: float, fallback: str) -> str:
    if not when:
        return fallback
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(float(when)))
    hours = (now - float(when)) / 3600
    return f"{stamp} ({hours:.1f}h ago)"


@lists.command("coverage")
@_catalogue_option
@_config_option
@_state_option
@click.option(
    "--policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Profiles to measure (default: the shipped policies/).",
)
@click.option("--profile", "default_profile", default="under16", show_default=True,
              help="Profile whose blocks of each source's sample are reported.")  # fmt: skip
@click.option(
    "--sample", type=int, default=DEFAULT_SAMPLE, show_default=True, help="Names per source."
)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Sampling seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the README's short tables.")
def coverage(
    catalogue_path: Path | None,
    state_dir: Path | None,
    policies: Path | None,
    default_profile: str,
    sample: int,
    seed: int,
    as_json: bool,
    as_markdown: bool,
) -> None:
    """Per category: leave-one-source-out coverage; per harmless set: what is blocked."""

    def go() -> None:
        cat, state = _setup(catalogue_path, state_dir)
        report = measure(cat, state, policies, default_profile, size=sample, seed=seed)
        if as_json:
            click.echo(json.dumps(to_json(report), indent=1))
        else:
            click.echo(markdown(report) if as_markdown else render(report))

    _run(go)
