"""No module in resolver/ over 400 lines: small units, one concern each (STYLE.md).

A module past this size has become several concerns; split it by concern, not by line count.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "resolver"
LIMIT = 400


def test_no_module_in_resolver_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    over = {path: lines for path, lines in sorted(sizes.items()) if lines > LIMIT}
    assert len(sizes) > 100 and not over, over
