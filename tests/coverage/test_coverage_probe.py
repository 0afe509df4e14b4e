"""Probing real UDP responders on loopback with aiodns: filtering, open, silent, many at once."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from coverage_helpers import TEST_NAME, start_site

from resolver.coverage.probe import probe_all, probe_resolver
from resolver.coverage.registry import Site
from resolver.coverage.status import NO_EVIDENCE, CoveragePolicy, judge


def _run(mode: str, timeout: float = 0.5) -> object:
    async def main() -> object:
        transport, port = await start_site(mode, f"site-{mode}")
        try:
            return await probe_resolver("127.0.0.1", port, test_name=TEST_NAME,
                                        timeout=timeout, tries=1)  # fmt: skip
        finally:
            transport.close()

    return asyncio.run(main())


def test_filtering_site() -> None:
    got = _run("filter")
    assert got.reachable and got.test_blocked is True and got.test_answer == "NXDOMAIN"
    assert got.canary is not None and got.canary.site == "site-filter"
    assert got.canary.profile == "school" and got.canary.index_age == 600


def test_null_address_counts_as_blocked() -> None:
    got = _run("nullip")
    assert got.test_blocked is True and got.test_answer == "0.0.0.0"


def test_open_resolver_is_reachable_but_not_filtering() -> None:
    got = _run("open")
    assert got.reachable and got.test_blocked is False and got.test_answer == "104.16.0.1"
    assert got.canary is None and got.canary_error == "NXDOMAIN"


def test_silent_site_times_out_within_the_bound() -> None:
    started = time.monotonic()
    got = _run("silent", timeout=0.3)
    assert time.monotonic() - started < 3
    assert not got.reachable and got.test_blocked is None and got.canary is None


def test_closed_port_is_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = asyncio.run(probe_resolver("127.0.0.1", port, timeout=0.3, tries=1))
    assert not got.reachable


@pytest.mark.parametrize(
    ("mode", "site", "covered", "reasons"),
    [
        ("filter", "site-filter", True, ()),
        ("nullip", "site-nullip", True, ()),
        ("filter", "other-site", False, ("canary names site site-filter",)),
        ("open", "site-open", False, ("no canary (NXDOMAIN)", "test name not blocked (104.16.0.1)")),
        ("silent", "site-silent", False, ("resolver unreachable",)),
    ],
)  # fmt: skip
def test_probe_only_verdict(mode: str, site: str, covered: bool, reasons: tuple[str, ...]) -> None:
    probe = _run(mode, timeout=0.3)
    entry = Site(site, site, "school", "", None, 1, ("127.0.0.1", 53))
    status = judge(entry, NO_EVIDENCE, probe, CoveragePolicy(now=0))  # type: ignore[arg-type]
    assert (status.covered, status.reasons) == (covered, reasons)


def test_three_hundred_sites_in_seconds() -> None:
    async def main() -> tuple[float, list[bool | None]]:
        modes = ["filter", "open", "silent"] * 100
        started = [await start_site(m, f"s{i}") for i, m in enumerate(modes)]
        try:
            t0 = time.monotonic()
            results = await probe_all([("127.0.0.1", port) for _, port in started],
                                      test_name=TEST_NAME, timeout=1.0, tries=1)  # fmt: skip
            elapsed = time.monotonic() - t0
        finally:
            for transport, _ in started:
                transport.close()
        return elapsed, [r.test_blocked for r in results]

    elapsed, blocked = asyncio.run(main())
    assert blocked == [True, False, None] * 100
    assert elapsed < 6, f"300 probes took {elapsed:.2f}s"
    print(f"300 sites probed in {elapsed:.2f}s (100 of them silent, timeout 1.0 s)")
