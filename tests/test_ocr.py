"""tests/ocr.py: a phrase is seen when OCR shows it nearly letter for letter, and only then."""

from __future__ import annotations

from tests.ocr import best_match, unseen

# What tesseract read from a real screenshot of the collector's dashboard (one misread: "100.05").
_READ = ("CÔNG AN TỈNH NGHỆ AN — Bảo vệ trẻ em trên môi trường mạng Tổng quan XuấtCSV "
         "Mức độ bao phủ Trường học 1 3| 33.3% | | Nhà cung cấp dịch vụ 1 1 | 100.05 | "
         "Theo quận/huyện và phường/xã Huyện Bình Xã Tân Nhựt")  # fmt: skip


def test_phrases_on_the_page_are_seen_despite_a_misread_letter() -> None:
    assert unseen(_READ, ["Mức độ bao phủ", "CÔNG AN TỈNH NGHỆ AN", "Trường học 1 3"]) == []
    assert best_match("Xuất CSV", _READ) >= 0.85  # OCR dropped the space


def test_phrases_not_on_the_page_are_not_seen() -> None:
    missing = unseen(_READ, ["Coverage by district", "Đơn vị chưa được bao phủ", "Trường học 2 3"])
    assert len(missing) == 3, missing
    assert best_match("Trường học 2 3", _READ) == 0.0  # one digit differs: not forgiven


def test_vietnamese_marks_count() -> None:
    # The same words without their marks are a different text to a Vietnamese reader.
    assert best_match("Muc do bao phu", _READ) < 0.85
