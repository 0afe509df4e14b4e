"""Coverage output: a plain-text table, CSV, and an offline HTML page with charts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, tzinfo

from resolver.audit.htmlpage import cell, kpis, page, table
from resolver.audit.record import iso
from resolver.audit.svg import share_bars, stacked_bars
from resolver.coverage.status import CoveragePolicy, Headline, SiteStatus, share

COLUMNS = (
    "site", "name", "kind", "commune", "covered", "live", "last_report", "index_age_h",
    "blocked", "queries", "signature", "probe_reachable", "canary", "test_blocked", "reasons",
    "temporary_allows",
)  # fmt: skip


# The HTML page's column headings and yes/no, Vietnamese first (CSV keeps the codes for scripts).
HEADINGS = {
    "site": "điểm / site", "name": "tên / name", "kind": "loại / kind",
    "commune": "phường/xã / commune", "covered": "được bảo vệ / covered",
    "live": "hoạt động / live", "last_report": "báo cáo gần nhất / last report",
    "index_age_h": "tuổi danh sách (giờ) / index age (h)", "blocked": "bị chặn / blocked",
    "queries": "truy vấn / queries", "signature": "chữ ký / signature",
    "probe_reachable": "thăm dò tới được / probe reachable", "canary": "canary",
    "test_blocked": "tên thử bị chặn / test name blocked", "reasons": "lý do / reasons",
    "temporary_allows": "mở tạm thời / temporary allows",
}  # fmt: skip
_YN_HTML = {"yes": "có / yes", "no": "không / no", "": ""}
_YES_NO = ("covered", "probe_reachable", "test_blocked")
_KINDS = {"school": "trường học / school", "isp": "nhà mạng / ISP"}

# Each reason judge() can give, by its fixed English start, and what a Vietnamese reader sees
# in front of it; the variable part (counts, an answer, an error) follows unchanged. CSV and JSON
# keep the English codes for scripts.
_REASONS_VI = (
    ("live instances ", "số máy đang chạy"),
    ("index not current", "danh sách chặn đã cũ"),
    ("no queries in window", "không có truy vấn trong khoảng thời gian"),
    ("resolver unreachable", "không tới được máy chủ DNS"),
    ("no canary", "không có bản ghi canary"),
    ("canary names site ", "canary ghi mã điểm khác"),
    ("canary: no blocklist index", "canary: không có danh sách chặn"),
    ("canary index not current", "canary: danh sách chặn đã cũ"),
    ("test name not blocked", "tên thử không bị chặn"),
    ("probe: test name not blocked", "thăm dò: tên thử không bị chặn"),
    ("no evidence", "không có bằng chứng"),
)


# The ledger's state (resolver/coverage/ledgers.py), by its fixed English start.
_SIGNATURES_VI = (
    ("valid", "hợp lệ"),
    ("missing", "không có nhật ký"),
    ("no public key in registry", "sổ đăng ký không có khóa công khai"),
    ("BROKEN ", "chuỗi bị hỏng"),
    ("TRUNCATED: ", "bị cắt mất phần cuối"),
    ("n/a", "không áp dụng"),
)


def _vietnamese(text: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for start, vietnamese in table:  # no start is a prefix of another: order is free
        if text.startswith(start):
            detail = text[len(start) :].strip() if start.endswith(" ") else ""
            return vietnamese + (" " + detail if detail else "")
    return None


def signature_text(signature: str) -> str:
    """The ledger's state in Vietnamese then English: "hợp lệ / valid"."""
    vietnamese = _vietnamese(signature, _SIGNATURES_VI)
    return f"{vietnamese} / {signature}" if vietnamese else signature


def reason_text(reason: str) -> str:
    """One reason in Vietnamese then English: "danh sách chặn đã cũ / index not current"."""
    if reason.startswith("ledger "):
        state = _vietnamese(reason.removeprefix("ledger "), _SIGNATURES_VI)
        return f"nhật ký: {state} / {reason}" if state else reason
    vietnamese = _vietnamese(reason, _REASONS_VI)
    return f"{vietnamese} / {reason}" if vietnamese else reason


def _reasons(s: SiteStatus) -> str:
    return "; ".join(reason_text(r) for r in s.reasons)


def _yn(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def row(s: SiteStatus, tz: tzinfo = UTC) -> tuple[str, ...]:
    """One site's values, as strings, in COLUMNS order."""
    ev, probe = s.evidence, s.probe
    canary = ""
    if probe is not None:
        canary = (f"site={probe.canary.site} profile={probe.canary.profile} "
                  f"index_age={probe.canary.index_age}") if probe.canary else probe.canary_error  # fmt: skip
    return (
        s.site.id, s.site.name, s.site.kind, s.site.commune, _yn(s.covered),
        f"{ev.live_instances}/{s.site.instances}" if ev.source else "",
        iso(ev.last_report, tz) if ev.last_report is not None else "",
        f"{ev.index_age / 3600:.1f}" if ev.index_age is not None else "",
        str(ev.blocked) if ev.source else "", str(ev.queries) if ev.source else "",
        ev.signature if ev.source else "",
        _yn(probe.reachable) if probe else "", canary,
        _yn(probe.test_blocked) if probe else "", "; ".join(s.reasons),
        str(ev.temporary_allows) if ev.source == "ledgers" else "",
    )  # fmt: skip


def headline_text(h: Headline) -> str:
    """The headline line, Vietnamese then English."""
    return (f"được bảo vệ: trường học {share(h.schools)}, nhà mạng {share(h.isps)} / "
            f"covered: schools {share(h.schools)}, ISPs {share(h.isps)}")  # fmt: skip


def render_csv(statuses: Sequence[SiteStatus], tz: tzinfo = UTC) -> str:
    """Header plus one row per registered site."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row(s, tz) for s in statuses)
    return out.getvalue()


_TABLE_COLUMNS = ("site", "kind", "covered", "live", "last_report", "index_age_h", "blocked",
                  "signature", "test_blocked", "reasons")  # fmt: skip


def render_table(statuses: Sequence[SiteStatus], tz: tzinfo = UTC) -> str:
    """Aligned text for a terminal, headline last."""
    picks = [COLUMNS.index(c) for c in _TABLE_COLUMNS]
    body = ([*(row(s, tz)[i] for i in picks[:-1]), _reasons(s)] for s in statuses)
    rows = [_TABLE_COLUMNS, *body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(picks) - 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1]
             for r in rows]  # fmt: skip
    return "\n".join(line.rstrip() for line in lines) + "\n" + headline_text(Headline.of(list(statuses))) + "\n"  # fmt: skip


def _charts(statuses: Sequence[SiteStatus], h: Headline) -> str:
    kinds = ["trường / schools", "nhà mạng / ISPs"]
    series = {
        "được bảo vệ / covered": [h.schools[0], h.isps[0]],
        "chưa / not covered": [h.schools[1] - h.schools[0], h.isps[1] - h.isps[0]],
    }
    blocks = [(s.site.id, s.evidence.blocked) for s in statuses if s.evidence.blocked > 0]
    top = sorted(blocks, key=lambda kv: -kv[1])[:20]
    title = "Điểm đã đăng ký: được bảo vệ và chưa / Registered sites: covered and not covered"
    parts = [stacked_bars(kinds, series, title, width=500)]
    if top:
        parts.append(share_bars(top, "Tỉ lệ chặn theo điểm / Share of blocks by site (top 20)"))
    return "\n".join(parts)


def render_html(statuses: Sequence[SiteStatus], policy: CoveragePolicy) -> str:
    """The whole page, Vietnamese first: headline, charts, the per-site table with the
    registry's names and communes."""
    h = Headline.of(list(statuses))
    hidden: set[str] = set()
    if not any(s.probe for s in statuses):
        hidden |= {"probe_reachable", "canary", "test_blocked"}
    header = [c for c in COLUMNS if c not in hidden]
    rows = []
    for s in statuses:
        values = dict(zip(COLUMNS, row(s, policy.tz), strict=True))
        values["kind"] = _KINDS.get(values["kind"], values["kind"])
        values["reasons"] = _reasons(s)
        values["signature"] = signature_text(values["signature"]) if values["signature"] else ""
        rows.append([
            cell(_YN_HTML.get(v, v) if c in _YES_NO else v,
                 ("ok" if s.covered else "bad") if c == "covered" else "")
            for c, v in values.items() if c in header
        ])  # fmt: skip
    body = "\n".join([
        kpis([("trường được bảo vệ / schools covered", share(h.schools)),
              ("nhà mạng được bảo vệ / ISPs covered", share(h.isps))]),
        _charts(statuses, h), "<h2>Các điểm / Sites</h2>",
        table([HEADINGS[c] for c in header], rows),
    ])  # fmt: skip
    live, age, window = (
        policy.live_within // 3600,
        policy.max_index_age // 3600,
        policy.window // 3600,
    )
    meta = (f"Tính đến / As of {iso(policy.now, policy.tz)}. Hoạt động = có báo cáo trong {live} giờ; "
            f"danh sách chặn cũ tối đa {age} giờ; số chặn và truy vấn trong {window} giờ qua / "
            f"Live = a report within {live} h; current index = at most {age} h old; blocks and "
            f"queries over the last {window} h.")  # fmt: skip
    return page("Mức độ bảo vệ trường học và nhà mạng / lachan coverage of schools and ISPs",
                meta, body, lang="vi")  # fmt: skip
