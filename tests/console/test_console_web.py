"""The console's pages in-process with an injected clock: allows and sessions end on time,
the activity page sums the ledger by day, hour and category (the site's time zone)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from resolver import config
from resolver.audit.acks import save_acks
from resolver.config import AuditSettings
from resolver.console.accounts import set_password
from resolver.console.pages import make_app
from resolver.console.status import Sources
from resolver.console.web import Console
from resolver.state import build_state

NOW = datetime(2026, 12, 2, 3, 30, tzinfo=UTC).timestamp()  # Wednesday 10:30 in Hanoi


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def run(tmp: Path, test: Callable[[TestClient, Clock], Awaitable[None]], ledger: Path | None = None) -> None:  # fmt: skip
    cfg = config.parse(
        f'lists: {{enabled: false, state_dir: "{tmp}"}}\nconsole: {{listen: "127.0.0.1:0"}}\n',
        "t",
    )
    if ledger is not None:
        cfg = dataclasses.replace(cfg, audit=AuditSettings(ledger, ledger))
    state = build_state(cfg)
    assert cfg.console is not None
    set_password(tmp / "console-users.json", "co-lan", "mat-khau-dai", "teacher")
    clock = Clock()
    console = Console(cfg.console, Sources(lambda: cfg, lambda: state, dict), tmp, clock)

    async def main() -> None:
        async with TestClient(TestServer(make_app(console))) as client:
            await test(client, clock)

    asyncio.run(main())


async def log_in(client: TestClient) -> str:
    page = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    done = await client.post("/login", data={"csrf": token.group(1), "user": "co-lan",
                                             "password": "mat-khau-dai"})  # fmt: skip
    text = await done.text()
    assert done.status == 200, text
    csrf = re.search(r'name="csrf" value="([^"]+)"', text)
    assert csrf
    return csrf.group(1)


def test_an_allow_disappears_from_the_list_when_its_time_is_over(tmp_path: Path) -> None:
    async def test(client: TestClient, clock: Clock) -> None:
        csrf = await log_in(client)
        form = {"csrf": csrf, "name": "khanacademy.org", "profile": "school",
                "duration": "30m", "reason": "toán"}  # fmt: skip
        page = await (await client.post("/allows", data=form)).text()
        assert "khanacademy.org" in page and "2026-12-02 11:00 +07" in page
        counted = await (await client.get("/activity")).text()
        assert re.search(r'id="allows-per-category"><tr><td>không có nhóm</td><td>1</td>', counted)
        clock.now += 30 * 60 - 1
        assert "khanacademy.org" in await (await client.get("/allows")).text()
        clock.now += 1
        assert "khanacademy.org" not in await (await client.get("/allows")).text()

    run(tmp_path, test)


def test_a_session_expires_after_its_minutes(tmp_path: Path) -> None:
    async def test(client: TestClient, clock: Clock) -> None:
        await log_in(client)
        assert (await client.get("/", allow_redirects=False)).status == 200
        clock.now += 480 * 60
        gone = await client.get("/", allow_redirects=False)
        assert gone.status == 303 and gone.headers["Location"] == "/login"

    run(tmp_path, test)


def test_the_activity_page_sums_todays_and_this_weeks_ledger_records(tmp_path: Path) -> None:
    def record(start: str, blocked: int, allowed: int) -> str:
        answers = {"blocked": {"gambling": {"school": blocked}},
                   "allowed": {"none": {"school": allowed}}}  # fmt: skip
        return json.dumps({"period_start": start, "period_end": start, "answers": answers})

    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("\n".join([
        record("2026-11-30T01:00:00Z", 5, 50),  # Monday 08:00 in Hanoi: this week
        record("2026-12-02T02:00:00Z", 2, 20),  # today 09:00
        record("2026-12-02T03:00:00Z", 1, 10),  # today 10:00
        record("2026-11-29T01:00:00Z", 100, 100),  # last week: not counted
    ]) + "\n{torn")  # fmt: skip

    async def test(client: TestClient, clock: Clock) -> None:
        await log_in(client)
        page = await (await client.get("/activity")).text()
        today, week = page.split("Tuần này")
        assert "<b>33</b>" in today and "<td>09:00</td><td>22</td><td>2</td>" in today
        # Categories by the catalogue's Vietnamese name, not the id scripts use.
        assert "<td>Cờ bạc</td><td>3</td>" in today and "gambling" not in page
        assert "<b>88</b>" in week and "<td>Cờ bạc</td><td>8</td>" in week
        english = await (await client.get("/activity?lang=en")).text()
        assert "<td>Gambling</td><td>3</td>" in english
        assert "<td>08:00</td><td>55</td><td>5</td>" in week

    run(tmp_path, test, ledger)


def test_concurrent_wrong_passwords_are_still_limited_to_five(tmp_path: Path) -> None:
    async def test(client: TestClient, clock: Clock) -> None:
        page = await (await client.get("/login")).text()
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        form = {"csrf": token.group(1), "user": "co-lan", "password": "wrong-password"}
        replies = await asyncio.gather(*(client.post("/login", data=form) for _ in range(10)))
        codes = sorted(r.status for r in replies)
        assert codes == [401] * 5 + [429] * 5, codes

    run(tmp_path, test)


def test_only_the_ledgers_tail_is_read_and_its_last_records_are_found(tmp_path: Path) -> None:
    from resolver.console.status import TAIL_BYTES, ledger_records

    ledger = tmp_path / "ledger.jsonl"
    old = json.dumps({"period_start": "2025-01-01T00:00:00Z", "seq": 0})
    with ledger.open("w") as out:
        out.write((old + "\n") * (TAIL_BYTES // len(old) + 10))  # more than the tail holds
        out.write(json.dumps({"period_start": "2026-12-02T03:00:00Z", "seq": 9}) + "\n")
    found = ledger_records(ledger)
    assert found[-1]["seq"] == 9 and len(found) <= TAIL_BYTES // len(old)


def test_forms_a_browser_would_never_send_get_4xx_not_a_500(tmp_path: Path) -> None:
    """Found by tests/fuzz/test_fuzz_console.py: each of these was a 500 and a traceback."""

    async def test(client: TestClient, clock: Clock) -> None:
        login = await client.get("/login")  # sets the login form's cookie
        assert login.status == 200
        accented = await client.post("/login", data={"csrf": "mã-độc", "user": "x"})
        assert accented.status == 403  # compare_digest refused non-ASCII text
        csrf = await log_in(client)
        raw = await client.post("/allows", data=b"csrf=" + csrf.encode() + b"&name=\xdd\xff",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert raw.status == 400
        multipart = await client.post("/allows", data=b"csrf=x",
                                      headers={"Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
        assert multipart.status == 400
        odd = await client.post("/allows", data={"csrf": "ư" * 40})
        assert odd.status == 403
        assert (await client.get("/allows")).status == 200  # and the session still works

    run(tmp_path, test)


def test_the_status_page_says_whether_the_province_has_the_last_record(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    records = [{"seq": n, "instance": "gw1", "period_start": "2026-12-02T0{n}:00:00Z",
                "period_end": "2026-12-02T0{n}:00:00Z", "queries": 1} for n in range(3)]  # fmt: skip
    ledger.write_text("".join(json.dumps(r) + "\n" for r in records))

    async def test(client: TestClient, clock: Clock) -> None:
        await log_in(client)
        page = await (await client.get("/")).text()
        assert "Chưa biết Sở đã nhận chưa: chưa gửi lên lần nào" in page  # never pushed
        save_acks(ledger, {"gw1": 1}, NOW - 600)
        page = await (await client.get("/")).text()
        assert (
            "Sở đã xác nhận đến bản ghi #1 (lần gửi lúc 2026-12-02 10:20 +07); còn 1 bản "
            "ghi chưa gửi" in page
        )
        save_acks(ledger, {"gw1": 2}, NOW)
        page = await (await client.get("/?lang=en")).text()
        assert "The province acknowledged record #2 (pushed 2026-12-02 10:30 +07)" in page

    run(tmp_path, test, ledger)


def test_why_says_in_vietnamese_whether_and_why_a_name_is_blocked(tmp_path: Path) -> None:
    async def test(client: TestClient, clock: Clock) -> None:
        await log_in(client)
        page = await (await client.get("/why?name=casino-online.com&profile=school")).text()
        assert "casino-online.com đang bị chặn với hồ sơ school: nhóm «từ khóa»." in page
        assert page.index('id="verdict"') < page.index("Chi tiết kỹ thuật (lachan explain)")
        open_page = await (await client.get("/why?name=example.com&profile=school")).text()
        assert "example.com không bị chặn với hồ sơ school." in open_page
        safe = await (await client.get("/why?name=www.google.com&profile=school")).text()
        assert "www.google.com được chuyển sang chế độ an toàn (forcesafesearch.google.com)" in safe
        english = await (await client.get("/why?name=casino-online.com&profile=school&lang=en")).text()
        assert "casino-online.com is blocked for profile school: category “a keyword”." in english

    run(tmp_path, test)
