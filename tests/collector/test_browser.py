"""The dashboard in a real headless Chromium: log in through the form, read what it shows."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

from cdp import Browser
from collector_helpers import FakeClock, running
from province import NOW, PASSWORD, SITES, build

from resolver.collector.db import Database
from resolver.collector.web import make_web_app
from tests.ocr import assert_table_shows
from tests.tools import require

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
        # The annual report as the dashboard's period form asks for it.
        annual = await page.eval("""(() => { const f = document.getElementById('period');
            f.elements.from.value = '2025-01'; f.elements.to.value = '2025-12';
            return f.action + '?' + new URLSearchParams(new FormData(f)); })()""")
        await page.goto(base + "/site/thpt-b")
        seen["site"] = await page.eval("document.body.innerText")
        await page.screenshot(shots / "site.png")
        seen["pdf"] = await page.eval("fetch('/export.pdf').then(r => r.status + ' ' +"
                                      " r.headers.get('content-type'))")  # fmt: skip
        # The PDF's bytes as the browser received them, to be rendered and read back below.
        pdf = await page.eval(f"fetch('{annual}').then(r => r.blob()).then(b => new Promise("
                              "ok => { const f = new FileReader(); f.onload = () =>"
                              " ok(f.result.split(',')[1]); f.readAsDataURL(b); }))")  # fmt: skip
        (shots / "export.pdf").write_bytes(base64.b64decode(pdf))
    return seen


def _pdf_pages(pdf: Path) -> list[Path]:
    """Each page of ``pdf`` as a PNG at 150 dpi, as it would come out of a printer."""
    subprocess.run([require("pdftoppm"), "-r", "150", "-png", str(pdf), str(pdf.with_suffix(""))],
                   check=True, timeout=60)  # fmt: skip
    return sorted(pdf.parent.glob(pdf.stem + "-*.png"))


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
    # What a person sees: the pixels read back by OCR, the whole page, digits exactly.
    assert_table_shows(tmp_path / "dashboard.png", [
        TITLE, "Mức độ bao phủ", "Trường học 1 3 33.3%", "Theo quận/huyện và phường/xã",
        "Đơn vị chưa được bao phủ", "THCS Nguyễn Du (thcs-c)", "Chưa từng báo cáo",
        "Cố gắng vượt rào (tính riêng)", "2025-11 1390 80 20"])  # fmt: skip
    assert_table_shows(tmp_path / "site.png", [
        "THPT Trần Phú (thpt-b)", "Chuỗi nhật ký Bị viết lại", "28/11/2025 12:00"])  # fmt: skip
    printed = _pdf_pages(tmp_path / "export.pdf")
    assert printed, "pdftoppm rendered no page"
    assert_table_shows(printed[0], [
        TITLE, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
        "BÁO CÁO KẾT QUẢ BẢO VỆ TRẺ EM TRÊN MÔI TRƯỜNG MẠNG", "Lập lúc: 28/11/2025 12:10",
        "Kỳ báo cáo: 01/2025 – 12/2025",
        "Mức độ bao phủ", "Trường học 1 3 33.3%", "Nhà cung cấp dịch vụ Internet 1 1 100.0%",
        "Huyện Bình Chánh Xã Tân Nhựt Trường học 0 1", "Chưa từng báo cáo",
        "Mục tiêu 100%", "Nhật ký bị viết lại 28/11/2025 12:00", "Tổng lượt chặn",
        "2025-11 1390 80 20 100", "Cố gắng vượt rào (tính riêng)", "Tháng bypass Tổng lượt chặn",
        "2025-11 20"])  # fmt: skip
