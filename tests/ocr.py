"""Screenshots read back as a person would read them: tesseract's OCR, Vietnamese and English.

Browser tests check the page text through the DOM too; this checks the pixels, so a page whose
text is in the DOM but hidden, clipped, unstyled into nothing or drawn in a font without the
Vietnamese marks is caught. OCR misreads a letter here and there (diacritics above capitals,
narrow columns), so a phrase counts as seen when some stretch of the OCR text matches it with a
similarity ratio of at least `min_ratio`; a page that does not show the phrase scores far below.
Digits are not forgiven: a stretch only counts when it holds the phrase's digits exactly, so
"Trường học 1 3" is not seen on a page showing "Trường học 2 3".
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.tools import require

_LANGUAGES = "vie+eng"
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d")


def _require_vietnamese(tesseract: str) -> None:
    listed = subprocess.run([tesseract, "--list-langs"], capture_output=True, text=True,
                            check=True).stdout.split()  # fmt: skip
    if "vie" not in listed:
        pytest.fail("tesseract has no Vietnamese data: run scripts/install-test-tools "
                    "(apt-get install tesseract-ocr-vie)", pytrace=False)  # fmt: skip


def screenshot_text(png: Path, psm: int | None = None) -> str:
    """The text tesseract reads in a PNG screenshot, whitespace collapsed to single spaces;
    ``psm`` chooses tesseract's page segmentation (default: its automatic one)."""
    tesseract = require("tesseract")
    _require_vietnamese(tesseract)
    # One thread: the suite runs on two cores beside servers the same test started.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    layout = ["--psm", str(psm)] if psm is not None else []
    done = subprocess.run([tesseract, str(png), "-", "-l", _LANGUAGES, *layout],
                          capture_output=True, text=True, env=env, timeout=120,
                          check=True)  # fmt: skip
    return _SPACE.sub(" ", done.stdout).strip()


def best_match(phrase: str, text: str) -> float:
    """The highest similarity (0..1) between `phrase` and any stretch of `text` as long as it."""
    phrase = _SPACE.sub(" ", phrase).strip().casefold()
    text = text.casefold()
    width = len(phrase)
    if not phrase or len(text) < width:
        return difflib.SequenceMatcher(None, phrase, text).ratio()
    digits = _DIGITS.findall(phrase)
    best = 0.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(phrase)
    for start in range(len(text) - width + 1):
        window = text[start : start + width]
        if digits and _DIGITS.findall(window) != digits:
            continue
        matcher.set_seq1(window)
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
            best = max(best, matcher.ratio())
    return best


def unseen(text: str, phrases: list[str] | tuple[str, ...], min_ratio: float = 0.85) -> list[str]:
    """The phrases of `phrases` the OCR text does not show (each with its best score)."""
    scores = {phrase: best_match(phrase, text) for phrase in phrases}
    return [f"{phrase!r} (best {score:.2f})" for phrase, score in scores.items()
            if score < min_ratio]  # fmt: skip


def assert_shows(png: Path, phrases: list[str] | tuple[str, ...], min_ratio: float = 0.85) -> str:
    """Fails naming every phrase the screenshot does not show; returns the OCR text."""
    text = screenshot_text(png)
    missing = unseen(text, phrases, min_ratio)
    assert not missing, f"{png.name} does not show {missing}; OCR read: {text[:600]!r}"
    return text


# Tables: automatic segmentation may read a table column by column, and which way it goes
# turns on small changes elsewhere on the page. Row by row, a row's cells stay together: a
# single column of text (4) and sparse text (11) both read that way; a phrase counts as seen
# when either reading shows it. Table rules read as "|" are dropped.
_TABLE_LAYOUTS = (4, 11)
_RULES = re.compile(r"\s*\|\s*")


def assert_table_shows(png: Path, phrases: list[str] | tuple[str, ...],
                       min_ratio: float = 0.85) -> str:  # fmt: skip
    """``assert_shows`` for pages of tables: rows read across; returns the OCR texts."""
    missing, texts = list(phrases), []
    for psm in _TABLE_LAYOUTS:
        texts.append(_RULES.sub(" ", screenshot_text(png, psm)))
        scores = {p: best_match(p, texts[-1]) for p in missing}
        missing = [p for p, score in scores.items() if score < min_ratio]
        if not missing:
            return " ".join(texts)
    report = unseen(texts[-1], missing, min_ratio)
    assert not missing, f"{png.name} does not show {report}; OCR read: {texts[0][:800]!r}"
    return " ".join(texts)
