"""Start and stop the console, the block page and the HTTPS refuser: one object per listener.

Hosted by the single process or the supervisor (never by every worker). A busy port is
logged and leaves DNS serving: the console is a convenience, protection is not.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..config import Config
from .connections import BLOCKPAGE_CAPS, CONSOLE_CAPS, ConnectionGuard, GuardedRunner
from .settings import ConsoleSettings
from .status import Sources

log = logging.getLogger(__name__)


class _ClientGarbage(logging.Filter):
    """Drop aiohttp's traceback for a malformed request (already answered 400): a client's
    junk is not the operator's error; a handler's own failure is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


logging.getLogger("aiohttp.server").addFilter(_ClientGarbage())


class _Refuse(asyncio.Protocol):
    """Reset at once: a browser shows a quick 'connection refused', never a certificate loop."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


class ConsoleRunner:
    def __init__(self, settings: ConsoleSettings, sources: Sources, state_dir: Path,
                 clock: Callable[[], float] = time.time,
                 counters: dict[tuple[str, str], int] | None = None) -> None:  # fmt: skip
        from .blockpage import make_blockpage_app
        from .pages import make_app
        from .web import Console

        self.console = Console(settings, sources, Path(state_dir), clock)
        self.guards = {  # connections closed by a limit count in lachan_console_refused_total
            "console": ConnectionGuard("console", "console", CONSOLE_CAPS, counters),
            "block page": ConnectionGuard("block page", "blockpage", BLOCKPAGE_CAPS, counters),
        }
        self._apps = [
            (make_app(self.console), settings.host, settings.port, "console"),
            (make_blockpage_app(self.console), settings.blockpage_host,
             settings.blockpage_port, "block page"),
        ]  # fmt: skip
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}  # listener -> the port bound (port 0: the real one)
        self._refuser: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        for app, host, port, what in self._apps:
            # No access log: no client address in any log. Handlers are not cancelled when
            # a client hangs up (aiohttp's default): a login's failure is counted all the same.
            runner = GuardedRunner(app, self.guards[what], access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port, reuse_address=True).start()
            except OSError as exc:
                log.error("%s not started: cannot listen on %s:%d: %s", what, host, port,
                          exc.strerror)  # fmt: skip
                await runner.cleanup()
                continue
            self._runners.append(runner)
            bound = self.ports[what] = runner.addresses[0][1] if runner.addresses else port
            log.info("%s on http://%s:%d/", what, host, bound)
        await self._start_refuser()

    async def _start_refuser(self) -> None:
        settings = self.console.settings
        if not settings.tls_refuse_port:
            return
        loop = asyncio.get_running_loop()
        try:
            self._refuser = await loop.create_server(
                _Refuse, settings.blockpage_host, settings.tls_refuse_port, reuse_address=True
            )
        except OSError as exc:
            log.error("HTTPS refuser not started on port %d: %s", settings.tls_refuse_port,
                      exc.strerror)  # fmt: skip
            return
        log.info("HTTPS to the block page refused on port %d", settings.tls_refuse_port)

    async def stop(self) -> None:
        if self._refuser is not None:
            self._refuser.close()
        for runner in self._runners:
            await runner.cleanup()


async def start_console(settings: ConsoleSettings | None, sources: Sources, state_dir: Path,
                        counters: dict[tuple[str, str], int] | None = None,
                        ) -> ConsoleRunner | None:  # fmt: skip
    """The running console when configured, else None (aiohttp is imported only then)."""
    if settings is None:
        return None
    runner = ConsoleRunner(settings, sources, state_dir, counters=counters)
    await runner.start()
    return runner


async def open_console(config: Config, sources: Sources,
                       counters: dict[tuple[str, str], int] | None = None,
                       ) -> ConsoleRunner | None:  # fmt: skip
    """The serve path's entry: the console of ``config`` started, or None when it is off."""
    from .settings import state_dir_of

    return await start_console(config.console, sources, state_dir_of(config.lists.state_dir),
                               counters)  # fmt: skip
