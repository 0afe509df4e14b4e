"""The dashboard in a real headless Chromium: log in through the form, read what it shows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from zoneinfo import ZoneInfo

from cdp import Browser
from collector_helpers import FakeClock, running
from province import NOW, PASSWORD, SITES, build

from resolver.collector.db import Database
from resolver.collector.web import make_web_app

TITLE = "CÔNG AN TỈNH NGHỆ AN"


async def _visit(base: str, profile: Path, shots: Path) -> dict[str, str]:
    seen: dict[str, str] = {}
    async with Browser(profile) as page:
        await page.goto(base + "/", until="location.pathname === '/login'")  # redirected
        seen["login"] = await page.eval("document.body.innerText")
        await page.eval(f"""(() => {{
            document.querySelector('[name=name]').value = 'kiem-tra';
            document.querySelector('[name=password]').value = {json.dumps(PASSWORD)};
            document.querySelector('form[action="/login"]').submit(); return true; }})()""")
        await page.wait_for("location.pathname === '/' && !!document.getElementById('headline')")
        seen["dashboard"] = await page.eval("document.body.innerText")
        await page.screenshot(shots / "dashboard.png")
        await page.goto(base + "/site/thpt-b")
        seen["site"] = await page.eval("document.body.innerText")
        await page.screenshot(shots / "site.png")
        seen["pdf"] = await page.eval("fetch('/export.pdf').then(r => r.status + ' ' +"
                                      " r.headers.get('content-type'))")  # fmt: skip
    return seen


def test_an_auditor_logs_in_and_reads_the_dashboard_and_a_site_page_in_chromium(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'collector.db'}")  # the browser cares not which DB
    db.migrate()
    build(db, tmp_path)
    app = make_web_app(Database(db.url), SITES, ZoneInfo("Asia/Ho_Chi_Minh"), TITLE,
                       FakeClock(NOW))  # fmt: skip
    with running(app) as base:
        seen = asyncio.run(_visit(base, tmp_path / "profile", tmp_path))
    assert "Đăng nhập" in seen["login"] and "Mật khẩu" in seen["login"]
    dashboard = seen["dashboard"]
    for expected in ("Mức độ bao phủ", "Theo quận/huyện và phường/xã", TITLE,
                     "Đơn vị chưa được bao phủ", "Cố gắng vượt rào (tính riêng)"):  # fmt: skip
        assert expected in dashboard, expected
    assert "Trường học\t1\t3\t33.3%" in dashboard
    assert "THCS Nguyễn Du (thcs-c)\tHuyện Bình Chánh\tXã Tân Nhựt\tChưa từng báo cáo" in dashboard
    assert "2025-11\t1390\t80\t20" in dashboard
    assert "Chuỗi nhật ký\tBị viết lại" in seen["site"]
    assert "Báo cáo gần nhất\t28/11/2025 12:00" in seen["site"]
    assert seen["pdf"] == "200 application/pdf"
    for shot in ("dashboard.png", "site.png"):
        data = (tmp_path / shot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
