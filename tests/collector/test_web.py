"""The dashboard over real HTTP: login with CSRF, Vietnamese pages, site pages, CSV and PDF."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from collector_helpers import FakeClock, running
from province import NOW, PASSWORD, SITES, build

from resolver.collector.auth import access_log
from resolver.collector.db import Database
from resolver.collector.web import make_web_app

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TITLE = "CÔNG AN TỈNH NGHỆ AN"


@pytest.fixture
def base(db: Database, tmp_path: Path) -> Iterator[str]:
    build(db, tmp_path)
    with running(make_web_app(Database(db.url), SITES, TZ, TITLE, FakeClock(NOW))) as url:
        yield url


def login(base: str, name: str = "kiem-tra", password: str = PASSWORD) -> requests.Session:
    http = requests.Session()
    form = http.get(base + "/login", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    http.post(base + "/login", data={"csrf": csrf.group(1), "name": name, "password": password},
              timeout=10)  # fmt: skip
    return http


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_nothing_but_the_login_page_is_open_to_anonymous_visitors(base: str) -> None:
    for path in ("/", "/site/thpt-a", "/export.csv", "/export.pdf"):
        reply = requests.get(base + path, timeout=10, allow_redirects=False)
        assert (reply.status_code, reply.headers["Location"]) == (302, "/login"), path


def test_a_login_without_its_csrf_token_or_with_a_wrong_password_fails(base, db) -> None:
    reply = requests.post(base + "/login", data={"name": "kiem-tra", "password": PASSWORD},
                          timeout=10, allow_redirects=False)  # fmt: skip
    assert reply.status_code == 403
    http = login(base, password="sai mật khẩu")
    assert "lachan_session" not in http.cookies
    assert [(n, a) for _, n, a, _ in access_log(db)] == [("kiem-tra", "login-failed")]


def test_the_dashboard_is_vietnamese_with_the_provinces_numbers(base: str) -> None:
    page = text_of(login(base).get(base + "/", timeout=10).text)
    assert "Mức độ bao phủ" in page and TITLE in page
    # Schools: thpt-a covered; thpt-b rewritten; thcs-c never reported. ISP x covered.
    assert "Trường học 1 3 33.3%" in page and "Nhà cung cấp dịch vụ Internet 1 1 100.0%" in page
    assert "Quận 1 Phường Bến Nghé Trường học 1 2 50.0%" in page
    assert "THPT Trần Phú (thpt-b) Quận 1 Phường Bến Nghé Nhật ký bị viết lại" in page
    assert "THCS Nguyễn Du (thcs-c) Huyện Bình Chánh Xã Tân Nhựt Chưa từng báo cáo" in page
    # Two schools × 5 hours: 2 × (510 + 15 + 10) queries, 2 × 15 adult, 2 × 10 gambling;
    # the ISP 5 × 64 queries, 50 adult, and 20 bypass attempts, apart.
    assert "Tháng Truy vấn adult gambling Tổng lượt chặn 2025-11 1390 80 20 100" in page
    assert "Cố gắng vượt rào (tính riêng) Tháng bypass 2025-11 20" in page
    assert "Giờ theo múi Asia/Ho_Chi_Minh" in page


def test_english_is_one_click_away_and_stays_chosen(base: str) -> None:
    http = login(base)
    assert "Coverage" in http.get(base + "/?lang=en", timeout=10).text
    assert "Sites not covered" in http.get(base + "/", timeout=10).text


def test_a_site_page_shows_its_chain_state_incidents_and_local_times(base: str) -> None:
    page = text_of(login(base).get(base + "/site/thpt-b", timeout=10).text)
    assert "Chuỗi nhật ký Bị viết lại" in page and "Số thứ tự cuối 4" in page
    assert (
        "Nhật ký bị viết lại (rewritten) seq 0 differs from the record acknowledged before" in page
    )  # the kind in Vietnamese, its code and the collector's detail
    # Last period ended 2025-11-28T05:00Z = 12:00 in Hanoi.
    assert "Báo cáo gần nhất 28/11/2025 12:00" in page


def test_only_auditors_export_and_every_export_is_logged(base: str, db: Database) -> None:
    viewer = login(base, "xem")
    assert viewer.get(base + "/export.csv", timeout=10).status_code == 403
    reply = login(base).get(base + "/export.csv", timeout=10)
    assert reply.status_code == 200
    lines = reply.content.decode("utf-8-sig").splitlines()
    assert (
        lines[0] == "site,name,kind,district,commune,covered,chain,reason,last_seq,last_period_end"
    )
    assert lines[2] == ("thpt-b,THPT Trần Phú,school,Quận 1,Phường Bến Nghé,0,rewritten,rewritten,"
                        "4,2025-11-28T12:00:00+07:00")  # fmt: skip
    actions = [(n, a, d) for _, n, a, d in access_log(db)]
    assert ("kiem-tra", "export", "csv") in actions and ("xem", "login", "") in actions


def test_logging_out_needs_the_csrf_token_and_ends_the_session(base: str) -> None:
    http = login(base)
    assert http.post(base + "/logout", data={}, timeout=10).status_code == 403
    page = http.get(base + "/", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    http.post(base + "/logout", data={"csrf": csrf.group(1)}, timeout=10)
    assert http.get(base + "/", timeout=10, allow_redirects=False).status_code == 302


def test_the_pdf_prints_the_title_block_and_numbers_in_vietnamese(base: str, tmp_path) -> None:
    reply = login(base).get(base + "/export.pdf", timeout=30)
    assert reply.headers["Content-Type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(reply.content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout  # fmt: skip
    flat = re.sub(r"\s+", " ", text)
    for expected in (TITLE, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
                     "BÁO CÁO KẾT QUẢ BẢO VỆ TRẺ EM TRÊN MÔI TRƯỜNG MẠNG",
                     "Trường học 1 3 33.3%", "THCS Nguyễn Du Huyện Bình Chánh Xã Tân Nhựt",
                     "Chưa từng báo cáo", "2025-11 1390 80 20"):  # fmt: skip
        assert expected in flat, (expected, flat)


def test_a_favicon_fetched_after_the_login_page_does_not_void_its_form(base: str) -> None:
    http = requests.Session()
    form = http.get(base + "/login", timeout=10).text
    http.get(base + "/favicon.ico", timeout=10)  # anonymous: redirected to /login too
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    reply = http.post(base + "/login", timeout=10, allow_redirects=False,
                      data={"csrf": csrf.group(1), "name": "xem", "password": PASSWORD})  # fmt: skip
    assert (reply.status_code, reply.headers["Location"]) == (302, "/")


def test_a_pdf_for_a_period_holds_only_its_months_and_says_which(base: str, tmp_path) -> None:
    http = login(base)
    assert 'action="/export.pdf" id="period"' in http.get(base + "/", timeout=10).text
    texts = {}
    for query in ("from=2025-01&to=2025-12", "from=2025-12"):
        reply = http.get(f"{base}/export.pdf?{query}", timeout=30)
        assert reply.status_code == 200
        pdf = tmp_path / "period.pdf"
        pdf.write_bytes(reply.content)
        texts[query] = re.sub(r"\s+", " ", subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True,
            timeout=60).stdout)  # fmt: skip
    annual, december = texts["from=2025-01&to=2025-12"], texts["from=2025-12"]
    assert "Kỳ báo cáo: 01/2025 – 12/2025" in annual and "2025-11 1390 80 20 100" in annual
    assert "Kỳ báo cáo: 12/2025 – …" in december and "2025-11" not in december
    bad = http.get(base + "/export.pdf?from=2025-13", timeout=10)
    assert (bad.status_code, bad.text) == (400, "from='2025-13': expected YYYY-MM\n")


def test_a_csrf_field_outside_ascii_is_refused_not_a_server_error(base: str) -> None:
    # secrets.compare_digest raises TypeError on non-ASCII text: that was a 500 before.
    anonymous = requests.Session()
    anonymous.get(base + "/login", timeout=10)  # the double-submit cookie
    reply = anonymous.post(base + "/login", data={"csrf": "mã-độc", "name": "kiem-tra",
                                                  "password": PASSWORD}, timeout=10)  # fmt: skip
    assert reply.status_code == 403
    http = login(base)
    reply = http.post(base + "/logout", data={"csrf": "mã-độc"}, timeout=10)
    assert reply.status_code == 403
