"""Shared fixtures for the blocklist tests: paths to the repository's list samples."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "lists"


@pytest.fixture
def data() -> Path:
    return DATA


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")
