"""`lachan coverage`: which registered schools and ISPs are covered, from ledgers/Prometheus/probes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..audit.record import parse_iso
from ..coverage.assess import ProbeOptions, assess
from ..coverage.canary import CANARY_NAME
from ..coverage.probe import TEST_NAME
from ..coverage.registry import load_registry
from ..coverage.render import render_csv, render_html, render_table
from ..coverage.status import CoveragePolicy
from ..errors import ConfigError, LachanError
from .audit import _zone, write_output


@click.command()
@click.option(
    "--registry",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Site registry YAML.",
)
@click.option(
    "--ledgers",
    type=click.Path(exists=True, file_okay=False),
    help="Directory of collected ledgers (*.jsonl, searched recursively).",
)
@click.option(
    "--prometheus", metavar="URL", help="Prometheus base URL, e.g. http://127.0.0.1:9090."
)
@click.option("--probe", is_flag=True, help="Also query each site's resolver (canary + test name).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "html"]), default="table")
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option(
    "--now",
    metavar="TIME",
    help="Judge as of this ISO time (default: now); without an offset it is read in --timezone.",
)
@click.option(
    "--timezone",
    "zone",
    default="Asia/Ho_Chi_Minh",
    show_default=True,
    help="The province's time zone: every time printed is on its clock.",
)
@click.option("--live-within", type=float, default=2.0, show_default=True, metavar="HOURS")
@click.option("--max-index-age", type=float, default=48.0, show_default=True, metavar="HOURS")
@click.option(
    "--window",
    type=float,
    default=24.0,
    show_default=True,
    metavar="HOURS",
    help="Blocks and queries are counted over this window.",
)
@click.option("--canary-name", default=CANARY_NAME, show_default=True)
@click.option(
    "--test-name", default=TEST_NAME, show_default=True, help="A name every profile must block."
)
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Probe timeout, s.")
@click.option("--concurrency", type=int, default=256, show_default=True)
@click.option("--expect-seq", "expect", multiple=True, metavar="SITE=N",
              help="The last sequence number known for SITE (e.g. from the collector): its "
              "ledgers ending before it lost their tail (repeatable).")  # fmt: skip
def coverage(
    registry: str, ledgers: str | None, prometheus: str | None, probe: bool, fmt: str,
    out: str | None, now: str | None, live_within: float, max_index_age: float, window: float,
    canary_name: str, test_name: str, timeout: float, concurrency: int, expect: tuple[str, ...],
    zone: str,
) -> None:  # fmt: skip
    """Per registered site: live, last report, index age, blocks, signature; the share covered."""
    if ledgers and prometheus:
        raise click.UsageError("give --ledgers or --prometheus, not both")
    if not (ledgers or prometheus or probe):
        raise click.UsageError("give --ledgers DIR, --prometheus URL and/or --probe")
    try:
        sites = load_registry(Path(registry))
        tz = _zone(zone)
        policy = CoveragePolicy(
            now=parse_iso(now, "--now", tz) if now else int(time.time()),
            live_within=int(live_within * 3600), max_index_age=int(max_index_age * 3600),
            window=int(window * 3600), expect_seq=_expect_seq(expect), tz=tz,
        )  # fmt: skip
        options = ProbeOptions(canary_name, test_name, timeout, 2, concurrency) if probe else None
        statuses = assess(sites, policy, ledgers=Path(ledgers) if ledgers else None,
                          prometheus=prometheus, probe=options)  # fmt: skip
    except LachanError as exc:
        for line in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    render = {"table": render_table, "csv": render_csv}.get(fmt)
    write_output(render(statuses, tz) if render else render_html(statuses, policy), out)


def _expect_seq(specs: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for spec in specs:
        site, _, number = spec.partition("=")
        if not site or not number.strip().isdigit():
            raise LachanError(f"--expect-seq {spec}: expected SITE=N, e.g. thpt-a=4380")
        out[site.strip()] = int(number)
    return out
