"""Both HTML pages (audit report, coverage) rendered by a real headless Chromium: charts drawn."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from coverage_helpers import HOUR, T0, site_key, write_ledger

from resolver.audit.keys import load_public_key
from resolver.audit.report import build_report, load_ledgers
from resolver.audit.report_html import render_html as audit_html
from resolver.coverage.assess import assess
from resolver.coverage.registry import load_registry
from resolver.coverage.render import render_html as coverage_html
from resolver.coverage.status import CoveragePolicy
from tests.ocr import assert_table_shows
from tests.tools import require

CHROMIUM = shutil.which("chromium") or "chromium"
# What the screenshots must show (OCR, digits exactly): headings in both languages, the numbers.
AUDIT_SHOWS = [
    "Báo cáo kiểm toán lachan / lachan audit report",
    "1 1,260 60 4.76% 0",
    "Chặn theo thời gian / Blocks over time",
    "Theo điểm / Per site",
    "thpt-a school 1,260 60 0 60",
    "chữ ký và chuỗi hợp lệ / signature and chain valid",
]
COVERAGE_SHOWS = [
    "Mức độ bảo vệ trường học và nhà mạng",
    "1/2 (50.0%) 1/1 (100.0%)",
    "trường được bảo vệ / schools covered",
    "45.3% (120)",
    "được bảo vệ / covered",
    "thpt-a school có / yes 1/1 2025-11-29T00:00:00Z 24.0",
    "thpt-b school không / no 0/1 2025-11-28T05:00:00Z",
]


@pytest.fixture(autouse=True, scope="module")
def _chromium() -> None:
    require("chromium")  # fails every test here naming the package, never skips


# Test-only: measure what the browser laid out and write it into the DOM for --dump-dom.
_MEASURE = """<script>
const out = [...document.querySelectorAll('svg')].map(svg => {
  const box = svg.getBoundingClientRect();
  const bars = [...svg.querySelectorAll('rect.bar')].map(r => r.getBBox());
  return {w: box.width, h: box.height, bars: bars.length,
          drawn: bars.filter(b => b.width > 0 && b.height > 0).length};
});
const pre = document.createElement('pre'); pre.id = 'geometry';
pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
</script></body>"""


def _chromium(tmp: Path, url: str, *extra: str, size: str = "1200,900") -> str:
    args = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp / 'profile'}", f"--window-size={size}",
            *extra, url]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _pixels(png: bytes) -> tuple[int, int, bytes]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) to raw RGB rows."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        chunk = png[pos + 8 : pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw, stride, prev, rows = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line[j] for j in range(stride) if j % bpp < 3))
        prev = line
    return width, height, b"".join(rows)


def _check_page(tmp: Path, html: str, svgs: int, shows: list[str]) -> None:
    page = tmp / "page.html"
    page.write_text(html, encoding="utf-8")
    assert not re.search(r"<script|<link|src=", html), "the page must work offline"
    measured = tmp / "measured.html"
    measured.write_text(html.replace("</body>", _MEASURE), encoding="utf-8")
    dom = _chromium(tmp, measured.as_uri(), "--dump-dom")
    found = re.search(r'<pre id="geometry">(.*?)</pre>', dom)
    assert found, "the measuring script did not run"
    geometry = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(geometry) == svgs
    for svg in geometry:
        assert svg["w"] > 100 and svg["h"] > 40 and svg["bars"] > 0
        assert svg["drawn"] == svg["bars"], svg
    shot = tmp / "shot.png"
    _chromium(tmp, page.as_uri(), f"--screenshot={shot}")
    width, height, rgb = _pixels(shot.read_bytes())
    assert (width, height) == (1200, 900)
    colours = {rgb[i : i + 3] for i in range(0, len(rgb), 3 * 7)}
    assert len(colours) > 20, "screenshot is blank"
    assert bytes.fromhex("0072B2") in colours, "the first chart colour is nowhere on screen"
    # The whole page, tall enough for every table, read back as a person would read it.
    whole = tmp / "whole.png"
    _chromium(tmp, page.as_uri(), f"--screenshot={whole}", "--force-device-scale-factor=1.5",
              size="1200,2400")  # fmt: skip
    assert_table_shows(whole, shows)


def test_audit_report_in_a_browser(tmp_path: Path) -> None:
    keys = site_key(tmp_path, "thpt-a")
    ledger = tmp_path / "a.jsonl"
    write_ledger(ledger, keys, "thpt-a", "school", "gw1", range(12))
    report = build_report(load_ledgers([ledger], {"thpt-a": load_public_key(keys / "audit.pub")}),
                          T0, T0 + 12 * HOUR)  # fmt: skip
    _check_page(tmp_path, audit_html(report, T0), svgs=2, shows=AUDIT_SHOWS)


def test_coverage_page_in_a_browser(tmp_path: Path) -> None:
    entries = []
    for site, hours in (("thpt-a", 24), ("thpt-b", 5), ("isp-c", 24)):
        keys = site_key(tmp_path, site)
        kind = "isp" if site.startswith("isp") else "school"
        write_ledger(tmp_path / "l" / f"{site}.jsonl", keys, site, kind, "gw1", range(hours))
        entries.append({"id": site, "kind": kind, "public_key": f"keys/{site}/audit.pub"})
    (tmp_path / "sites.yaml").write_text(json.dumps({"sites": entries}))
    policy = CoveragePolicy(now=T0 + 24 * HOUR + 600)
    statuses = assess(load_registry(tmp_path / "sites.yaml"), policy, ledgers=tmp_path / "l")
    _check_page(tmp_path, coverage_html(statuses, policy), svgs=2, shows=COVERAGE_SHOWS)
