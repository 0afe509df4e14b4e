"""The collector's aiohttp application: the push API and (for people) the dashboard."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import tzinfo

from aiohttp import web

from resolver.collector.api import make_app
from resolver.collector.db import Database
from resolver.coverage.registry import Site


def make_web_app(db: Database, sites: Sequence[Site], tz: tzinfo, title: str,
                 clock: Callable[[], float] = time.time) -> web.Application:  # fmt: skip
    """The whole collector application."""
    return make_app(db, clock)
