"""Fixtures for coverage tests: fake DNS sites on loopback in a background event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from coverage_helpers import start_site


@pytest.fixture
def dns_sites() -> Iterator[Callable[[str, str], int]]:
    """Start fake sites on loopback in a background loop; returns ``start(mode, site) -> port``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    transports = []

    def start(mode: str, site: str) -> int:
        transport, port = asyncio.run_coroutine_threadsafe(start_site(mode, site), loop).result(5)
        transports.append(transport)
        return port

    yield start
    for t in transports:
        loop.call_soon_threadsafe(t.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
