"""A teacher's whole visit in a real browser (headless Chromium driven by Playwright): log in,
read the status, ask why a name is blocked, open it for a lesson, revoke it, switch language."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.integration.console_helpers import (
    CHROMIUM,
    GAMBLING,
    PASSWORDS,
    STILL_BLOCKED,
    Env,
    answer,
    console_server,
)

PHONE = {"width": 412, "height": 915}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("console-browser")
    with console_server(tmp_path_factory.getbasetemp(), work) as running:
        yield running


@pytest.fixture(scope="module")
def browser(env: Env) -> Iterator[Browser]:
    # The blocked name leads to the block page, as lachan's blockpage answer would send it.
    rules = f"--host-resolver-rules=MAP {STILL_BLOCKED} 127.0.0.1:{env.blockpage}"
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM,  # the system's Chromium: nothing is downloaded
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", rules],
        )  # fmt: skip
        yield launched
        launched.close()


def logged_in(browser: Browser, env: Env, user: str) -> Page:
    page = browser.new_page(viewport=PHONE)
    page.goto(env.console + "/")  # redirected to the login form
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("#login")
    page.wait_for_selector("#protection")
    return page


def png_facts(png: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data): blank pages have very few."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        idat += png[pos + 8 : pos + 8 + length] if kind == b"IDAT" else b""
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_a_teacher_sees_the_status_with_real_numbers_on_a_phone(
    env: Env, browser: Browser, tmp_path: Path
) -> None:
    assert answer(env, GAMBLING) == "127.0.0.1"  # a blocked query the counters must show
    page = logged_in(browser, env, "teacher")
    for _ in range(20):  # workers report every second
        if int(page.inner_text("#blocks")) >= 1:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.inner_text("#protection") == "Bảo vệ đang bật"
    assert int(page.inner_text("#queries")) >= 1 and int(page.inner_text("#blocks")) >= 1
    assert "site=e2e-console" in page.inner_text("#canary")
    assert "school" in page.inner_text("#profiles")
    lists = page.inner_text("#lists")
    assert re.search(r"hostsvn-gambling\s+[1-9]\d*", lists), lists  # a source and its entries
    shot = tmp_path / "status.png"
    page.screenshot(path=str(shot))
    width, height, colours = png_facts(shot.read_bytes())
    assert (width, height) == (412, 915) and colours > 8
    assert page.evaluate("document.documentElement.scrollWidth") <= 412  # no sideways scroll


def test_a_teacher_asks_why_opens_the_site_for_a_lesson_and_revokes_it(
    env: Env, browser: Browser
) -> None:
    page = logged_in(browser, env, "teacher")
    page.goto(env.console + "/why")
    page.fill("input[name=name]", GAMBLING)
    page.select_option("select[name=profile]", "school")
    page.click("#look-up")
    assert "category gambling" in page.inner_text("#explain")
    page.goto(env.console + "/allows")
    page.fill("input[name=name]", GAMBLING)
    page.select_option("select[name=profile]", "school")
    page.select_option("select[name=duration]", "30m")
    page.fill("input[name=reason]", "Tiết học về quảng cáo")
    page.click("#allow")
    assert page.inner_text("#message") == "Đã lưu"
    row = page.inner_text("#allows")
    assert GAMBLING in row and "teacher" in row and "Tiết học về quảng cáo" in row
    assert re.search(r"\+07", row), row  # the site's time zone
    page.click("#allows button")
    assert "Không có trang nào đang mở tạm thời" in page.inner_text("#allows")


def test_the_english_switch_sticks_and_teachers_see_no_permanent_allow(
    env: Env, browser: Browser
) -> None:
    page = logged_in(browser, env, "teacher")
    page.click("text=English")
    assert page.inner_text("#protection") == "Protection is on"
    page.goto(env.console + "/reviews")
    assert "Review requests" in page.inner_text("h1")  # the cookie keeps English
    assert page.locator("button[value=permanent]").count() == 0


def test_a_review_asked_on_the_block_page_is_opened_by_a_teacher(
    env: Env, browser: Browser
) -> None:
    student = browser.new_page(viewport=PHONE)
    student.goto(f"http://{STILL_BLOCKED}/")
    assert "Trang này đã bị chặn" in student.inner_text("h1")
    assert "Tổng đài quốc gia bảo vệ trẻ em 111" in student.inner_text("body")
    student.click("#review")
    assert "Đã gửi yêu cầu" in student.inner_text("body")
    page = logged_in(browser, env, "teacher")
    page.goto(env.console + "/reviews")
    row = page.locator("#reviews tr", has_text=STILL_BLOCKED)
    assert "gambling" in row.inner_text() and "school" in row.inner_text()
    row.locator("input[name=reason]").fill("học sinh hỏi")
    row.locator("button[value=temporary]").click()
    assert page.inner_text("#message") == "Đã lưu"
    page.goto(env.console + "/allows")
    assert STILL_BLOCKED in page.inner_text("#allows") and "học sinh hỏi" in page.inner_text(
        "#allows"
    )
