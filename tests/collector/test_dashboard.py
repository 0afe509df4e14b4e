"""The dashboard's pure view models: shares, areas, and month tables with bypass apart."""

from __future__ import annotations

import pytest

from resolver.collector.dashboard import Share, by_area, month_tables
from resolver.collector.status import judge_site
from resolver.coverage.registry import Site

NOW = 1_764_288_000


def site(ident: str, commune: str, kind: str = "school") -> Site:
    return Site(ident, ident, kind, commune, None, 1, None, "Quận 1")


def test_areas_count_covered_sites_per_commune_and_kind() -> None:
    statuses = [judge_site(site("a", "P1"), [], {}, NOW), judge_site(site("b", "P1"), [], {}, NOW),
                judge_site(site("c", "P2", "isp"), [], {}, NOW)]  # fmt: skip
    rows = [(r.commune, r.kind, r.share) for r in by_area(statuses)]
    assert rows == [("P1", "school", Share(0, 2)), ("P2", "isp", Share(0, 1))]
    assert Share(1, 3).percent == 33.3 and Share(0, 0).percent == 0.0


def test_anti_bypass_categories_go_to_their_own_table() -> None:
    content, bypass = month_tables([
        ("2026-01", "*", 1000), ("2026-01", "adult", 30), ("2026-01", "bypass", 4),
        ("2026-02", "vpn-proxy-doh", 2), ("2026-02", "adult", 60), ("2026-02", "*", 900),
    ])  # fmt: skip
    assert content.categories == ("adult",) and bypass.categories == ("bypass", "vpn-proxy-doh")
    assert content.months == bypass.months == ("2026-01", "2026-02")
    assert content.month_total("2026-02") == 60 and bypass.month_total("2026-02") == 2
    assert (content.bar("2026-01"), content.bar("2026-02")) == (100, 200)
    assert content.queries == {"2026-01": 1000, "2026-02": 900}


def test_pdf_bars_are_in_proportion_inside_a_box_for_the_100_percent_target() -> None:
    from resolver.collector.exports import BAR, bar

    boxed, plain = bar(BAR * 0.333, True), bar(BAR * 2, False)
    assert [r.width for r in boxed.contents] == [BAR, pytest.approx(BAR * 0.333)]
    assert [r.width for r in plain.contents] == [BAR]
