"""The compiled blocklist index: one immutable, checksummed, memory-mapped file per snapshot.

Layout (little endian)::

    0   magic b"LACHIDX\\0"
    8   u32 format version
    12  u32 header length H
    16  header: UTF-8 JSON (build time, categories, sources with digests and counts,
        match table, slot-pair table, section offsets)
    ..  name table (8-byte aligned, see resolver/_nametable.c): per listed name a 64-bit hash
        and a u16 or u32 record, the record being an index into the slot-pair table
    -32 SHA-256 of every byte before it

Each key has two slots: *self* (the query is the listed name) and *sub* (the query is
below it). A slot points at an interned match (action, category mask, source, rewrite), so
a million names cost their table slots: 10 or 12 bytes at a load of 0.7, 14.3 or 17.1 bytes
per name. A lookup hashes every label suffix of the name in one pass and probes the table
from the most specific suffix up, in C. Categories of less specific block rules
are folded into more specific ones at compile time, so the first non-empty slot found while
walking suffixes most specific first is the whole answer (see rules.py for semantics).
Worker processes map the same file: the pages are shared through the page cache.
"""

from __future__ import annotations

import array
import hashlib
import json
import mmap
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resolver._nametable import START_BITS, Table
from resolver.errors import IndexError_
from resolver.lists.match import ListAction, ListMatch

MAGIC = b"LACHIDX\x00"
FORMAT_VERSION = 2  # 1 was a marisa-trie; 2 the name table
PREFIX = struct.Struct("<8sII")
DIGEST_SIZE = 32
NO_MATCH = -1
_MISS = object()
_START_MASK = (1 << START_BITS) - 1


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """The header of a compiled index, as written by the compiler."""

    path: Path
    built_at: float
    categories: tuple[str, ...]
    sources: dict[str, dict[str, Any]]
    counts: dict[str, int]
    key: str


@dataclass(frozen=True, slots=True)
class _Template:
    """An interned match without the rule name (the rule is the key that matched)."""

    action: ListAction
    categories: frozenset[str]
    source: str
    wildcard: bool
    rewrite: tuple[tuple[str, str], ...]
    mask: int

    def match(self, rule: str) -> ListMatch:
        rule = "*." + rule if self.wildcard else rule
        return ListMatch(self.action, self.categories, self.source, rule, self.rewrite, self.mask)

    def shared(self) -> ListMatch:
        return ListMatch(self.action, self.categories, self.source, "", self.rewrite, self.mask)


def reverse_key(name: str) -> str:
    """Compile-time sort key of a dotted name: characters reversed plus a label-boundary dot,
    so that every ancestor sorts before its descendants (build._fold relies on it)."""
    return ("." + name)[::-1]


class SharedLookup:
    """The ``Lookup`` that decide() is given on the serving path: ``Index.lookup_shared``."""

    __slots__ = ("lookup",)

    def __init__(self, lookup: Callable[[str], ListMatch | None]) -> None:
        self.lookup = lookup


class Index:
    """A loaded index; lookups are synchronous, allocation-free on repeats, and thread-safe."""

    def __init__(self, path: Path, *, memo_size: int = 4096) -> None:
        self._mm, self._view, header = _open_verified(Path(path))
        self.info = _info(Path(path), header)
        self.categories = self.info.categories
        self._bits = {cat: 1 << i for i, cat in enumerate(self.categories)}
        self._templates = _templates(header, self.categories)
        pairs = header["pairs"]
        self._self = pairs[0::2]
        self._sub = pairs[1::2]
        start, length = header["table"]
        try:
            self._table = Table(
                self._view[start : start + length],
                array.array("i", pairs).tobytes(),
                header["table_cap"],
                header["value_size"],
                header["table_seed"],
            )
        except (ValueError, TypeError) as exc:
            raise IndexError_(f"{path}: bad name table: {exc}") from None
        self._match = self._table.match
        self.classify = self._table.classify  # the fast path's packet check (fastpath.py)
        self._record_of = self._table.get
        # One match object per template, shared by every name the template matches: the
        # serving path needs the action, categories and source, never the rule's own name.
        self._shared = [t.shared() for t in self._templates]
        self._memo: dict[str, ListMatch | None] = {}
        self._older: dict[str, ListMatch | None] = {}
        self._memo_size = memo_size
        self.shared = SharedLookup(self.lookup_shared)

    def __len__(self) -> int:
        return int(self.info.counts["keys"])

    def lookup(self, name: str) -> ListMatch | None:
        """Winning rule for a lowercase dotted name without trailing dot, or None.

        The match names the rule that won (``rule``); for explain, ``lists lookup`` and tests.
        """
        found = self._match(name)
        if found < 0:
            return None
        return self._templates[found >> START_BITS].match(name[found & _START_MASK :])

    def lookup_shared(self, name: str) -> ListMatch | None:
        """lookup() for the serving path: the same winner, as the match object its template
        shares with every other name (``rule`` is empty), with no object built per name."""
        hit = self._memo.get(name, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        hit = self._older.get(name, _MISS)
        if hit is _MISS:
            found = self._match(name)
            hit = None if found < 0 else self._shared[found >> START_BITS]
        # Two generations instead of an LRU: no bookkeeping per hit, and a name asked for
        # again within two generations survives the flip (DNS query streams are Zipf-like).
        memo = self._memo
        if len(memo) >= self._memo_size:
            if not self._memo_size:
                return hit  # type: ignore[return-value]
            self._older = memo
            memo = self._memo = {}
        memo[name] = hit  # type: ignore[assignment]
        return hit  # type: ignore[return-value]

    def shared_match(self, template: int) -> ListMatch:
        """The shared match of a template id, as classify() reports it."""
        return self._shared[template]

    def explain(self, name: str) -> list[tuple[str, str, ListMatch]]:
        """Every listed suffix of ``name`` with the slot that applies, most specific first."""
        out: list[tuple[str, str, ListMatch]] = []
        labels = name.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            record = self._record_of(suffix)
            if record < 0:
                continue
            exact = i == 0
            mid = self._self[record] if exact else self._sub[record]
            if mid != NO_MATCH:
                out.append((suffix, "self" if exact else "sub", self._templates[mid].match(suffix)))
        return out

    def category_mask(self, categories: Iterable[str]) -> int:
        """Bitmask of the given category ids (unknown ids contribute nothing)."""
        mask = 0
        for cat in categories:
            mask |= self._bits.get(cat, 0)
        return mask


def open_index(path: Path | str, *, memo_size: int = 4096) -> Index:
    """Open and verify a compiled index; raise IndexError_ if it is corrupt or truncated."""
    return Index(Path(path), memo_size=memo_size)


def _open_verified(path: Path) -> tuple[mmap.mmap, memoryview, dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            mm = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise IndexError_(f"{path}: cannot map index: {exc}") from None
    view = memoryview(mm)
    if len(mm) < PREFIX.size + DIGEST_SIZE:
        raise IndexError_(f"{path}: truncated index ({len(mm)} bytes)")
    magic, version, hlen = PREFIX.unpack_from(mm, 0)
    if magic != MAGIC:
        raise IndexError_(f"{path}: not a lachan index (bad magic)")
    if version != FORMAT_VERSION:
        raise IndexError_(f"{path}: index format {version}, this lachan reads {FORMAT_VERSION}")
    body = view[: len(mm) - DIGEST_SIZE]
    if hashlib.sha256(body).digest() != mm[len(mm) - DIGEST_SIZE :]:
        raise IndexError_(f"{path}: checksum mismatch (corrupt or truncated index)")
    try:
        header = json.loads(bytes(view[PREFIX.size : PREFIX.size + hlen]))
    except ValueError as exc:
        raise IndexError_(f"{path}: unreadable header: {exc}") from None
    return mm, view, header


def _info(path: Path, header: dict[str, Any]) -> IndexInfo:
    return IndexInfo(
        path=path,
        built_at=float(header["built_at"]),
        categories=tuple(header["categories"]),
        sources=dict(header["sources"]),
        counts=dict(header["counts"]),
        key=str(header.get("key", "")),
    )


def _templates(header: dict[str, Any], categories: tuple[str, ...]) -> list[_Template]:
    sources = header["source_ids"]
    out = []
    for action, mask, source, wildcard, rewrite in header["matches"]:
        cats = frozenset(c for i, c in enumerate(categories) if mask >> i & 1)
        rw = tuple((str(t), str(d)) for t, d in rewrite)
        out.append(_Template(ListAction(action), cats, sources[source], bool(wildcard), rw, mask))
    return out
