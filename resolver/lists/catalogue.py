"""The category catalogue (blocklists/catalogue.yaml): categories, their sources, defaults."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from resolver import yamlsafe
from resolver.errors import ListError
from resolver.lists.rules import FORMATS
from resolver.settings import ExtraSource
from resolver.shipped import shipped_dir

if TYPE_CHECKING:
    from resolver.settings import ListsSettings

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Source:
    """One list feeding a category: a URL, a bundled file, or both."""

    id: str
    category: str
    format: str
    url: str | None
    bundled: Path | None
    licence: str
    refresh: int  # seconds
    guarded: bool = False  # drop entries naming a protected platform host exactly


@dataclass(frozen=True, slots=True)
class Category:
    """A category with stable id, names in Vietnamese and English, and its sources."""

    id: str
    name_vi: str
    name_en: str
    description: str
    default: bool
    sources: tuple[Source, ...]
    guarded: bool = False
    never_block: bool = False  # no profile blocks these names by category or keyword


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The whole catalogue; ``digest`` changes whenever the file does."""

    path: Path
    categories: tuple[Category, ...]
    digest: str
    protected: frozenset[str] = frozenset()

    @property
    def sources(self) -> tuple[Source, ...]:
        """Every source, in catalogue order (the order that breaks ties between sources)."""
        return tuple(s for c in self.categories for s in c.sources)

    @property
    def category_ids(self) -> tuple[str, ...]:
        """Category ids in catalogue order (bit order of the index's category masks)."""
        return tuple(c.id for c in self.categories)

    @property
    def default_categories(self) -> frozenset[str]:
        """Categories the default configuration blocks."""
        return frozenset(c.id for c in self.categories if c.default)

    @property
    def never_block(self) -> frozenset[str]:
        """Categories whose names no profile blocks (education, health, child)."""
        return frozenset(c.id for c in self.categories if c.never_block)

    def source(self, source_id: str) -> Source:
        """The source with this id; ListError if there is none."""
        for src in self.sources:
            if src.id == source_id:
                return src
        raise ListError(f"{self.path}: no source {source_id!r}")


def default_catalogue_path() -> Path:
    """The catalogue shipped with lachan (installed package data, else the checkout's)."""
    return shipped_dir("blocklists") / "catalogue.yaml"


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate a catalogue file; raise ListError naming the file and key."""
    path = Path(path) if path else default_catalogue_path()
    try:
        raw = path.read_bytes()
        data = yamlsafe.load(raw)
    except OSError as exc:
        raise ListError(f"{path}: cannot read catalogue: {exc}") from None
    except yaml.YAMLError as exc:
        try:
            yamlsafe.read_text(path)  # libyaml's reader error for bytes that are not UTF-8
        except ValueError as not_utf8:
            raise ListError(f"{path}: cannot read catalogue: {not_utf8}") from None
        raise ListError(f"{path}: cannot read catalogue: {yamlsafe.problem(exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise ListError(f"{path}: expected a mapping with a 'categories' list")
    categories = tuple(_category(path, i, c) for i, c in enumerate(data["categories"]))
    _check_unique(path, [c.id for c in categories], "category")
    _check_unique(path, [s.id for c in categories for s in c.sources], "source")
    protected, extra = _protected(path, data.get("protected"))
    digest = hashlib.sha256(raw + extra).hexdigest()
    return Catalogue(path, categories, digest, protected)


def _protected(path: Path, name: Any) -> tuple[frozenset[str], bytes]:
    """Read the protected-hosts file named by the catalogue (plain domains, exact names)."""
    if not name:
        return frozenset(), b""
    file = path.parent / str(name)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ListError(f"{path}: protected: cannot read {file}: {exc}") from None
    from resolver.lists.parsers import parse_domains  # not at import: serving rarely needs it

    result = parse_domains(raw.decode("utf-8", errors="replace"))
    if result.problems:
        first = result.problems[0]
        raise ListError(f"{file}:{first.line_no}: {first.reason}")
    return frozenset(rule.name for rule in result.rules), raw


def _check_unique(path: Path, ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ListError(f"{path}: duplicate {what} id {ident!r}")
        seen.add(ident)


def _field(path: Path, where: str, data: dict[str, Any], key: str, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is None:
        raise ListError(f"{path}: {where}: missing key {key!r}")
    return value


def _category(path: Path, i: int, data: Any) -> Category:
    where = f"categories[{i}]"
    if not isinstance(data, dict):
        raise ListError(f"{path}: {where}: expected a mapping")
    cid = str(_field(path, where, data, "id"))
    if not _ID.fullmatch(cid):
        raise ListError(f"{path}: {where}.id: {cid!r} is not a lowercase id")
    where = f"category {cid}"
    sources = data.get("sources") or []
    guarded = bool(data.get("guarded", False))
    return Category(
        id=cid,
        name_vi=str(_field(path, where, data, "name_vi")),
        name_en=str(_field(path, where, data, "name_en")),
        description=str(_field(path, where, data, "description", "")),
        default=bool(data.get("default", False)),
        sources=tuple(_source(path, cid, j, s, guarded) for j, s in enumerate(sources)),
        guarded=guarded,
        never_block=bool(data.get("never_block", False)),
    )


def _source(path: Path, category: str, j: int, data: Any, guarded: bool) -> Source:
    where = f"category {category}: sources[{j}]"
    if not isinstance(data, dict):
        raise ListError(f"{path}: {where}: expected a mapping")
    sid = str(_field(path, where, data, "id"))
    if not _ID.fullmatch(sid):
        raise ListError(f"{path}: {where}.id: {sid!r} is not a lowercase id")
    where = f"source {sid}"
    fmt = str(_field(path, where, data, "format"))
    if fmt not in FORMATS:
        raise ListError(f"{path}: {where}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    url, bundled = data.get("url"), data.get("bundled")
    if not url and not bundled:
        raise ListError(f"{path}: {where}: needs a 'url', a 'bundled' file, or both")
    return Source(
        id=sid,
        category=category,
        format=fmt,
        url=str(url) if url else None,
        bundled=(path.parent / str(bundled)) if bundled else None,
        licence=str(_field(path, where, data, "licence")),
        refresh=parse_interval(path, where, str(data.get("refresh", "24h"))),
        guarded=guarded,
    )


def parse_interval(path: Path, where: str, text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``7d`` (or bare seconds) to seconds."""
    unit = _UNITS.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdigit() or int(number) == 0:
        raise ListError(f"{path}: {where}: refresh {text!r} is not like 30m, 12h or 7d")
    return int(number) * (unit or 1)


def with_extra(catalogue: Catalogue, extras: tuple[ExtraSource, ...], where: str) -> Catalogue:
    """The catalogue with the site's sources appended to their categories (ListError naming
    ``where``, e.g. ``lachan.yaml: lists.extra_sources[0]``, on an unknown category or id)."""
    if not extras:
        return catalogue
    known = {c.id: c for c in catalogue.categories}
    taken = {s.id for s in catalogue.sources}
    added: dict[str, list[Source]] = {}
    for i, extra in enumerate(extras):
        if extra.category not in known:
            raise ListError(f"{where}[{i}].category: unknown category {extra.category!r} "
                            f"(known: {', '.join(catalogue.category_ids)})")  # fmt: skip
        if extra.id in taken:
            raise ListError(f"{where}[{i}].id: {extra.id!r} is already a source id")
        taken.add(extra.id)
        source = Source(extra.id, extra.category, extra.format, extra.url, extra.file,
                        extra.licence, extra.refresh, known[extra.category].guarded)  # fmt: skip
        added.setdefault(extra.category, []).append(source)
    categories = tuple(
        dataclasses.replace(c, sources=c.sources + tuple(added.get(c.id, ()))) if c.id in added
        else c
        for c in catalogue.categories
    )  # fmt: skip
    digest = hashlib.sha256((catalogue.digest + repr(extras)).encode()).hexdigest()
    return dataclasses.replace(catalogue, categories=categories, digest=digest)


def load_for(settings: ListsSettings, where: str) -> Catalogue:
    """The catalogue a config's ``lists`` section names, with its extra sources; a problem is
    one line naming ``where`` (the config file) and the key."""
    try:
        catalogue = load_catalogue(settings.catalogue)
    except ListError as exc:
        raise ListError(f"{where}: lists.catalogue: {exc}") from None
    return with_extra(catalogue, settings.extra_sources, f"{where}: lists.extra_sources")
