"""Category names a person reads: the catalogue's Vietnamese and English names for its ids, and
the words for the blocks that come from no list (the site's deny list, keywords, anti-bypass)."""

from __future__ import annotations

from ..config import Config
from ..errors import LachanError
from ..lists.catalogue import load_for

# Blocks whose category is the reason's own label (resolver/policy/decision.py, Block).
_RULE_NAMES = {
    "deny": ("danh sách chặn riêng của đơn vị", "the site's own deny list"),
    "keyword": ("từ khóa", "a keyword"),
    "bypass": ("chống vượt rào (DNS mã hóa, VPN)", "anti-bypass (encrypted DNS, VPN)"),
    "none": ("không có nhóm", "no category"),
}


def category_names(config: Config) -> dict[str, tuple[str, str]]:
    """Category id -> (Vietnamese, English) name (the catalogue's, else only the rule words)."""
    names = dict(_RULE_NAMES)
    try:
        catalogue = load_for(config.lists, config.source)
    except LachanError:
        return names
    names.update({c.id: (c.name_vi, c.name_en) for c in catalogue.categories})
    return names


def named(names: dict[str, tuple[str, str]], category: str, lang: str) -> str:
    """The category's name in ``lang`` ("vi" or "en"); its id when nobody named it."""
    pair = names.get(category)
    if pair is None:
        return category
    return pair[0] if lang == "vi" else pair[1]
