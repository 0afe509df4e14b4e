"""Headless Chromium driven over the DevTools protocol (aiohttp's WebSocket client)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--remote-debugging-port=0",
         "--remote-allow-origins=*")  # fmt: skip


class Browser:
    """One Chromium with one page; ``await browser.eval(js)`` and friends. Use ``async with``."""

    def __init__(self, profile: Path) -> None:
        chromium = shutil.which("chromium")
        if chromium is None:
            raise RuntimeError("chromium is not installed (Debian package chromium)")
        self.profile = profile
        self.proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}",
                                      "about:blank"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Browser:
        port = await self._port()
        self.http = aiohttp.ClientSession()
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as reply:
            pages = [t for t in await reply.json() if t["type"] == "page"]
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)

    async def _port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        return int(marker.read_text().split()[0])

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events in between are skipped)."""
        ident = next(self._ids)
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads((await self.ws.receive(timeout=30)).data)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message["result"])

    async def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)  # fmt: skip
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 15.0) -> None:
        """Poll until ``expression`` is true in the page."""
        deadline = time.monotonic() + seconds
        while not await self.eval(f"document.readyState === 'complete' && ({expression})"):
            if time.monotonic() > deadline:
                where = await self.eval("location.href + ' ' + document.body.innerText")
                raise AssertionError(f"page never satisfied {expression}; at {where[:300]}")
            await asyncio.sleep(0.1)

    async def goto(self, url: str, until: str | None = None) -> None:
        """Navigate; wait until ``until`` holds (default: the page is at ``url``)."""
        await self.call("Page.navigate", url=url)
        await self.wait_for(until or f"location.href === {json.dumps(url)}")

    async def screenshot(self, path: Path, width: int = 1280, scale: float = 1.5) -> None:
        """The whole page, not only the window, at ``width`` CSS pixels and ``scale`` device
        pixels each (larger glyphs keep the Vietnamese marks readable to OCR)."""
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=800,
                        deviceScaleFactor=scale, mobile=False)  # fmt: skip
        size = (await self.call("Page.getLayoutMetrics"))["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
        data = (await self.call("Page.captureScreenshot", format="png", clip=clip,
                                captureBeyondViewport=True))["data"]  # fmt: skip
        await self.call("Emulation.clearDeviceMetricsOverride")
        path.write_bytes(base64.b64decode(data))
