"""Reading ``lists.extra_sources`` (the site's own lists) from lachan.yaml."""

from __future__ import annotations

import re
from pathlib import Path

from .config_read import Reader, one_of
from .settings import ExtraSource

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_FORMATS = ("auto", "hosts", "domains", "wildcard", "allow", "adblock", "rpz")


def extra_sources(node: Reader, base: Path) -> tuple[ExtraSource, ...]:
    """Each ``{id, category, url | file, format?, refresh?, licence?}``; problems recorded."""
    from .errors import ListError
    from .lists.catalogue import parse_interval

    out = []
    for item in node.items("extra_sources"):
        if not isinstance(item.value, dict):
            item.problem("must be a mapping: {id, category, url or file, format}")
            continue
        item.reject_unknown({"id", "category", "url", "file", "format", "refresh", "licence"})
        ident = item.get("id", "", str, _source_id)
        category = item.get("category", "", str)
        url, file = item.get("url", "", str, http_url), item.get("file", "", str)
        for key, value in (("id", ident), ("category", category)):
            if not value and not item.has(key):
                item.problem("missing", item.child_path(key))
        if bool(url) == bool(file):
            item.problem("needs exactly one of url and file")
        try:
            refresh = parse_interval(Path(node.source), "", item.get("refresh", "24h", str))
        except ListError:
            item.problem("like 30m, 12h or 7d", item.child_path("refresh"))
            refresh = 86_400
        if ident and category and bool(url) != bool(file):
            out.append(ExtraSource(
                id=ident, category=category, url=url or None,
                file=(base / Path(file).expanduser()) if file else None,
                format=item.get("format", "auto", str, one_of(*_FORMATS)),
                refresh=refresh, licence=item.get("licence", "local", str),
            ))  # fmt: skip
    return tuple(out)


def _source_id(value: str) -> str | None:
    return None if _ID.fullmatch(value) else f"lowercase letters, digits and '-': {value!r}"


def http_url(value: str) -> str | None:
    return None if value.startswith(("https://", "http://")) else f"not an http(s) URL: {value!r}"
