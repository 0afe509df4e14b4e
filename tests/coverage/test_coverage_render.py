"""The coverage page names schools and communes from the registry, Vietnamese first."""

from __future__ import annotations

from pathlib import Path

from coverage_helpers import HOUR, T0, site_key, write_ledger

from resolver.coverage.assess import assess
from resolver.coverage.registry import load_registry
from resolver.coverage.render import render_html
from resolver.coverage.status import CoveragePolicy


def test_the_page_shows_the_registrys_names_and_communes_vietnamese_first(tmp_path: Path) -> None:
    keys = site_key(tmp_path, "thpt-lhp")
    write_ledger(tmp_path / "l" / "a.jsonl", keys, "thpt-lhp", "school", "gw1", range(24))
    (tmp_path / "sites.yaml").write_text(
        "sites:\n  - {id: thpt-lhp, name: THPT Lê Hồng Phong, kind: school,\n"
        "     commune: Phường Vinh Phú, public_key: keys/thpt-lhp/audit.pub}\n"
    )
    policy = CoveragePolicy(now=T0 + 24 * HOUR + 600)
    html = render_html(
        assess(load_registry(tmp_path / "sites.yaml"), policy, ledgers=tmp_path / "l"), policy
    )
    assert '<td class="">THPT Lê Hồng Phong</td>' in html
    assert '<td class="">Phường Vinh Phú</td>' in html
    assert '<html lang="vi">' in html
    assert html.index("trường được bảo vệ") < html.index("schools covered")
    assert html.index("Các điểm") < html.index("Sites</h2>")
    assert "<th>điểm / site</th><th>tên / name</th>" in html
    assert "<th>được bảo vệ / covered</th>" in html and '<td class="ok">có / yes</td>' in html


def test_the_html_page_says_when_on_the_provinces_clock() -> None:
    from zoneinfo import ZoneInfo

    from resolver.coverage.render import render_html
    from resolver.coverage.status import CoveragePolicy

    page = render_html([], CoveragePolicy(now=1_764_298_800, tz=ZoneInfo("Asia/Ho_Chi_Minh")))
    assert "Tính đến / As of 2025-11-28T10:00:00+07:00" in page and " UTC." not in page


def test_kinds_and_reasons_read_in_vietnamese_first_with_the_english_code_after(
    tmp_path: Path,
) -> None:
    keys = site_key(tmp_path, "thcs-cu")
    write_ledger(tmp_path / "l" / "a.jsonl", keys, "thcs-cu", "school", "gw1", range(3))
    (tmp_path / "sites.yaml").write_text(
        "sites:\n  - {id: thcs-cu, kind: school, public_key: keys/thcs-cu/audit.pub}\n"
        "  - {id: isp-moi, kind: isp}\n"
    )
    policy = CoveragePolicy(now=T0 + 48 * HOUR)  # the school's last report is two days old
    html = render_html(assess(load_registry(tmp_path / "sites.yaml"), policy,
                              ledgers=tmp_path / "l"), policy)  # fmt: skip
    assert '<td class="">trường học / school</td>' in html
    assert '<td class="">nhà mạng / ISP</td>' in html
    assert "số máy đang chạy 0/1 / live instances 0/1" in html
    assert '<td class="">hợp lệ / valid</td>' in html
    assert "danh sách chặn đã cũ / index not current" in html
    isp_row = html[html.index("isp-moi"):].split("</tr>")[0]
    assert "nhật ký: sổ đăng ký không có khóa công khai / ledger no public key in registry" in isp_row, isp_row


def test_every_reason_judge_gives_has_its_vietnamese_text() -> None:
    import inspect
    import re

    from resolver.coverage import status
    from resolver.coverage.render import reason_text

    # Every literal reason start in status.py, as the code writes it.
    starts = re.findall(r'(?:append|reasons = \[|return \[)\(?f?"([a-z][^"{(]*)',
                        inspect.getsource(status))  # fmt: skip
    assert len(starts) >= 10, starts
    for start in starts:
        reason = start + "x" if start.endswith(" ") else start  # "x" stands for the detail
        reason = "ledger missing" if start == "ledger " else reason
        shown = reason_text(reason)
        assert shown.endswith(" / " + reason) and not shown.startswith(start), start


def test_no_reason_start_is_a_prefix_of_another_so_the_first_match_is_the_only_one() -> None:
    from resolver.coverage.render import _REASONS_VI, _SIGNATURES_VI

    for table in (_REASONS_VI, _SIGNATURES_VI):
        starts = [start for start, _ in table]
        assert not [(a, b) for a in starts for b in starts if a != b and b.startswith(a)]
