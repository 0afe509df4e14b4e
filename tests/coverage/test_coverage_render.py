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
