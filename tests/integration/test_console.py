"""The school console and block page on a running ``lachan serve --workers 2``: real HTTP,
dig, curl and headless Chromium, on loopback only."""

from __future__ import annotations

import random
import re
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.console_helpers import (
    ADULT,
    CHROMIUM,
    GAMBLING,
    STILL_BLOCKED,
    Env,
    answer,
    console_server,
    login,
)
from tests.integration.hardening_helpers import sample


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("console")
    with console_server(tmp_path_factory.getbasetemp(), work) as running:
        yield running


def test_the_status_page_shows_real_numbers_from_the_running_server(env: Env) -> None:
    assert answer(env, GAMBLING) == "127.0.0.1"  # blockpage mode: the console host's address
    session, _ = login(env, "teacher")
    deadline, page = time.monotonic() + 10, ""
    while time.monotonic() < deadline:  # workers report their counters every second
        page = session.get(env.console + "/", timeout=10).text
        queries = re.search(r'id="queries">(\d+)<', page)
        if queries and int(queries.group(1)) >= 1 and 'id="blocks">0<' not in page:
            break
        time.sleep(0.5)
    assert "Bảo vệ đang bật" in page and "site=e2e-console" in page, page
    assert "profile=school" in page and "school" in page
    assert queries and int(queries.group(1)) >= 1, page


def test_why_is_this_blocked_gives_the_explain_answer(env: Env) -> None:
    session, _ = login(env, "teacher")
    page = session.get(env.console + "/why", params={"name": GAMBLING, "profile": "school"},
                       timeout=10).text  # fmt: skip
    assert "category gambling" in page and "block-page address" in page, page
    bad = session.get(env.console + "/why", params={"name": "bad name!"}, timeout=10)
    assert bad.status_code == 400 and "Không thực hiện được" in bad.text


def test_a_teacher_allows_a_site_for_a_while_and_revokes_it(env: Env) -> None:
    session, csrf = login(env, "teacher")
    form = {"csrf": csrf, "name": GAMBLING, "profile": "school", "duration": "30m",
            "reason": "bài học về quảng cáo"}  # fmt: skip
    done = session.post(env.console + "/allows", data=form, timeout=10)
    assert done.status_code == 200 and "Đã lưu" in done.text, done.text
    assert GAMBLING in done.text and "teacher" in done.text and "bài học" in done.text
    assert GAMBLING in (env.state / "temporary-allows.json").read_text()
    audit = (env.state / "console-audit.log").read_text()
    assert '"action": "allow"' in audit and '"category": "gambling"' in audit
    gone = session.post(env.console + "/allows/revoke", timeout=10,
                        data={"csrf": csrf, "name": GAMBLING, "profile": "school"})  # fmt: skip
    assert gone.status_code == 200 and "Không có trang nào đang mở tạm thời" in gone.text


def test_adult_sites_and_posts_without_the_token_are_refused(env: Env) -> None:
    session, csrf = login(env, "teacher")
    form = {"csrf": csrf, "name": ADULT, "profile": "school", "duration": "1h", "reason": "x"}
    refused = session.post(env.console + "/allows", data=form, timeout=10)
    assert refused.status_code == 400 and "adult" in refused.text
    forged = session.post(env.console + "/allows", data={**form, "csrf": "forged"}, timeout=10)
    assert forged.status_code == 403
    anonymous = requests.post(env.console + "/allows", data=form, timeout=10)
    assert anonymous.status_code == 403


def test_the_block_page_files_a_review_that_staff_see_and_only_an_admin_allows_for_good(
    env: Env,
) -> None:
    page = requests.get(f"http://127.0.0.1:{env.blockpage}/x?y", headers={"Host": GAMBLING},
                        timeout=10)  # fmt: skip
    assert page.status_code == 200 and "Trang này đã bị chặn" in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    odd = requests.get(f"http://127.0.0.1:{env.blockpage}/", timeout=10,
                       headers={"Host": "<script>alert(1)</script>.vn"})  # fmt: skip
    assert odd.status_code == 400 and "<script>" not in odd.text  # not a name: never echoed
    assert "Nhóm: Cờ bạc" in page.text and "Category: Gambling" in page.text
    assert "school" in page.text and "111" in page.text
    filed = requests.post(f"http://127.0.0.1:{env.blockpage}/review", data={"name": GAMBLING},
                          timeout=10)  # fmt: skip
    assert "Đã gửi yêu cầu" in filed.text
    reviews = (env.state / "console-reviews.json").read_text()
    assert "127.0.0.1" not in reviews and GAMBLING in reviews  # no client address kept
    teacher, csrf = login(env, "teacher")
    queue = teacher.get(env.console + "/reviews", timeout=10).text
    review_id = re.search(r'action="/reviews/([0-9a-f]+)"', queue)
    assert review_id and GAMBLING in queue, queue
    url = env.console + "/reviews/" + review_id.group(1)
    denied = teacher.post(url, data={"csrf": csrf, "action": "permanent"}, timeout=10)
    assert denied.status_code == 403 and "Chỉ quản trị viên" in denied.text
    admin, admin_csrf = login(env, "admin")
    done = admin.post(url, data={"csrf": admin_csrf, "action": "permanent"}, timeout=10)
    assert done.status_code == 200 and "Đã lưu" in done.text, done.text
    assert GAMBLING in (env.local / "school.yaml").read_text()
    deadline = time.monotonic() + 20  # the console's SIGHUP reloads every worker
    while time.monotonic() < deadline and answer(env, GAMBLING) == "127.0.0.1":
        time.sleep(0.3)
    assert answer(env, GAMBLING) == "198.51.100.7"


def test_a_login_from_a_network_not_listed_is_refused(env: Env) -> None:
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.2",
         env.console + "/login"], capture_output=True, text=True, timeout=15,
    )  # fmt: skip
    assert done.stdout == "403", done.stdout + done.stderr


def test_https_to_the_block_address_is_reset_at_once(env: Env) -> None:
    started = time.monotonic()
    data = b"?"
    try:
        with socket.create_connection(("127.0.0.1", env.tls), timeout=5) as conn:
            conn.sendall(b"\x16\x03\x01\x00\x05hello")  # a TLS ClientHello's first bytes
            data = conn.recv(100)
    except ConnectionResetError:
        data = b""  # the RST may arrive before or after the connect returns
    assert data == b"" and time.monotonic() - started < 2


def chromium(tmp: Path, url: str, env: Env, *extra: str) -> str:
    rules = f"--host-resolver-rules=MAP {STILL_BLOCKED} 127.0.0.1:{env.blockpage}"
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}", rules, *extra, url]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def png_size_and_colours(png: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data) of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        idat += png[pos + 8 : pos + 8 + length] if kind == b"IDAT" else b""
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_chromium_shows_the_block_page_in_vietnamese_on_a_phone_screen(
    env: Env, tmp_path: Path
) -> None:
    dom = chromium(tmp_path, f"http://{STILL_BLOCKED}/", env, "--dump-dom")
    assert "Trang này đã bị chặn" in dom and "Tổng đài quốc gia bảo vệ trẻ em 111" in dom
    assert "This site is blocked" in dom and "Gửi yêu cầu xem xét" in dom
    shot = tmp_path / "block.png"
    chromium(tmp_path, f"http://{STILL_BLOCKED}/", env, f"--screenshot={shot}",
             "--window-size=412,915")  # fmt: skip
    width, height, colours = png_size_and_colours(shot.read_bytes())
    assert (width, height) == (412, 915) and colours > 8
    login_dom = chromium(tmp_path, env.console + "/login", env, "--dump-dom")
    assert "Đăng nhập" in login_dom and "Mật khẩu" in login_dom


def test_random_requests_get_4xx_never_a_crash_and_logins_are_rate_limited(env: Env) -> None:
    rng = random.Random(18)
    parts = [b"GET", b"POST", b"PUT", b"\x00\xff", b"/", b"/login", b"/allows", b"/reviews/x",
             b"%", b"..", b"?lang=zz", b" HTTP/1.1\r\n", b"Host: a\r\n", b"Content-Length: 99\r\n",
             b"Content-Length: -1\r\n", b"\r\n", b"csrf=&name=%ff", "ư".encode()]  # fmt: skip
    for port in (int(env.console.rsplit(":", 1)[1]), env.blockpage):
        for _ in range(150):
            data = b"".join(rng.choice(parts) for _ in range(rng.randint(1, 12)))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(data + b"\r\n\r\n")
                conn.shutdown(socket.SHUT_WR)
                reply = b""
                try:
                    while chunk := conn.recv(65536):
                        reply += chunk
                except (ConnectionResetError, TimeoutError):
                    pass
            code = reply[9:12]
            assert not code.startswith(b"5"), (data, reply[:200])
    # The well-formed ones among them spent this address's request budget: it comes back.
    assert served_again(env.console + "/login", timeout=10)
    session = requests.Session()
    codes = []
    for _ in range(7):
        token = re.search(r'value="([^"]+)"', session.get(env.console + "/login", timeout=10).text)
        assert token
        codes.append(session.post(env.console + "/login", timeout=10, data={
            "csrf": token.group(1), "user": "teacher", "password": "wrong"}).status_code)  # fmt: skip
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429], codes


def served_again(url: str, timeout: float) -> bool:
    """True once ``url`` answers 200 again (after a burst was answered 429)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(url, timeout=10, headers={"Host": STILL_BLOCKED}).status_code == 200:
            return True
        time.sleep(0.5)
    return False


def curl_code(url: str, source: str) -> str:
    done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface",
                           source, "-H", f"Host: {STILL_BLOCKED}", url],
                          capture_output=True, text=True, timeout=15)  # fmt: skip
    return done.stdout


@pytest.mark.parametrize("which", ["block page", "console"])
def test_a_flood_from_one_address_is_answered_429_and_others_are_still_served(
    env: Env, which: str
) -> None:
    url = f"http://127.0.0.1:{env.blockpage}/" if which == "block page" else env.console + "/login"
    with requests.Session() as flood:  # one keep-alive connection, as fast as it goes
        flood.headers["Host"] = STILL_BLOCKED  # the block page answers for a blocked name
        codes = [flood.get(url, timeout=10).status_code for _ in range(150)]
    assert codes.count(429) >= 50 and set(codes) <= {200, 429}, codes
    assert codes[0] == 200 and codes[-1] == 429
    if which == "block page":  # anyone may reach it: another device is still served
        assert curl_code(url, "127.0.0.2") == "200"
    assert served_again(url, timeout=10)


def test_idle_connections_beyond_the_cap_are_closed_counted_and_others_still_served(
    env: Env,
) -> None:
    """Slowloris on the block page of ``lachan serve``: 40 idle connections from one address
    leave 32 open; another device is served meanwhile; the 8 closes reach /metrics."""
    before = sample(env.metrics, "lachan_console_refused_total", listener="blockpage",
                    reason="per_address")  # fmt: skip
    attack = [socket.create_connection(("127.0.0.1", env.blockpage), timeout=5) for _ in range(40)]
    try:
        shut: set[int] = set()
        deadline = time.monotonic() + 5  # the server may be slow to accept on a busy machine
        while len(shut) < 8 and time.monotonic() < deadline:
            for n, conn in enumerate(attack):
                conn.settimeout(0.01)
                try:
                    if conn.recv(10) == b"":
                        shut.add(n)
                except ConnectionResetError:
                    shut.add(n)
                except TimeoutError:
                    pass
        assert len(shut) == 8, shut
        assert curl_code(f"http://127.0.0.1:{env.blockpage}/", "127.0.0.2") == "200"
    finally:
        for conn in attack:
            conn.close()
    after = sample(env.metrics, "lachan_console_refused_total", listener="blockpage",
                   reason="per_address")  # fmt: skip
    assert after - before == 8


def test_a_single_process_server_hosts_the_console_too(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path_factory.mktemp("console-single")
    with console_server(tmp_path_factory.getbasetemp(), work, workers=1) as single:
        assert answer(single, STILL_BLOCKED) == "127.0.0.1"
        session, _ = login(single, "teacher")
        page = session.get(single.console + "/", timeout=10).text
        assert "Bảo vệ đang bật" in page and "site=e2e-console" in page
