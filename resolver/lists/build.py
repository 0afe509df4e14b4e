"""Compile parsed rules from many sources into one index file (format: see index.py)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resolver._nametable import build_table
from resolver.errors import ListError
from resolver.lists.index import DIGEST_SIZE, FORMAT_VERSION, MAGIC, NO_MATCH, PREFIX, reverse_key
from resolver.lists.match import ListAction
from resolver.lists.rules import Rule, Scope

ALLOW = ListAction.ALLOW
# One slot: (action, category mask, source index, wildcard flag, rewrite records).
Slot = tuple[ListAction, int, int, bool, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class SourceInput:
    """One source's rules as the compiler sees them."""

    source: str
    category: str
    rules: Sequence[Rule]
    digest: str = ""
    rejected: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _merge(old: Slot | None, new: Slot) -> Slot:
    """Two rules for the same name and slot: an exception wins, else the first source's
    action stands and the categories add up."""
    if old is None:
        return new
    if old[0] is ALLOW or new[0] is ALLOW:
        return old if old[0] is ALLOW else new
    return (old[0], old[1] | new[1], old[2], old[3], old[4])


def _collect(inputs: Sequence[SourceInput], bits: dict[str, int]) -> dict[str, list[Slot | None]]:
    table: dict[str, list[Slot | None]] = {}
    for src_index, src in enumerate(inputs):
        mask = bits[src.category]
        made: dict[tuple[Scope, ListAction, tuple[tuple[str, str], ...]], Slot] = {}
        for name, scope, action, rewrite in src.rules:
            key = ("." + name)[::-1]
            slot = made.get((scope, action, rewrite))
            if slot is None:  # a source has a handful of distinct slots: build each once
                wild = scope is Scope.WILDCARD
                slot = (action, 0 if action is ALLOW else mask, src_index, wild, rewrite)
                made[(scope, action, rewrite)] = slot
            slots = table.get(key)
            if slots is None:
                table[key] = [
                    None if scope is Scope.WILDCARD else slot,
                    None if scope is Scope.EXACT else slot,
                ]
                continue
            if scope is not Scope.WILDCARD:
                old = slots[0]
                slots[0] = slot if old is None else _merge(old, slot)
            if scope is not Scope.EXACT:
                old = slots[1]
                slots[1] = slot if old is None else _merge(old, slot)
    return table


def _fold(table: dict[str, list[Slot | None]], keep: int = 0) -> list[str]:
    """Add the categories of enclosing block rules to each more specific block rule.

    A name under a blocked adult domain stays adult even when a games list names it too;
    an exception on the way resets the inheritance. Bits in ``keep`` (never-block categories)
    stay where they are listed: a gambling name a block list puts below a never-block school
    domain (a hijacked subdomain) stays blocked. Returns the keys in sorted order (reversed
    names sort every ancestor before its descendants)."""
    keys = sorted(table)
    stack: list[tuple[str, int]] = []  # (key, mask its subtree passes down)
    for key in keys:
        while stack and not key.startswith(stack[-1][0]):
            stack.pop()
        inherited = stack[-1][1] & ~keep if stack else 0
        slots = table[key]
        for i in (0, 1):
            slot = slots[i]
            if slot is not None and slot[0] is not ALLOW and inherited & ~slot[1]:
                slots[i] = (slot[0], slot[1] | inherited, slot[2], slot[3], slot[4])
        sub = slots[1]
        stack.append((key, inherited if sub is None else (0 if sub[0] is ALLOW else sub[1])))
    return keys


def build_index(
    inputs: Sequence[SourceInput],
    categories: Sequence[str],
    path: Path,
    *,
    key: str = "",
    clock: Callable[[], float] = time.time,
    never_block: frozenset[str] = frozenset(),
) -> Path:
    """Write the index for ``inputs`` atomically to ``path`` and return it."""
    if len(categories) > 62:
        raise ListError("more than 62 categories cannot fit the index's category mask")
    bits = {cat: 1 << i for i, cat in enumerate(categories)}
    for src in inputs:
        if src.category not in bits:
            raise ListError(f"source {src.source}: unknown category {src.category!r}")
    table = _collect(inputs, bits)
    keys = _fold(table, sum(bits[c] for c in never_block if c in bits))
    matches, pairs, record_of = _intern(table, keys)
    names = [k[-2::-1] for k in keys]  # keys are reverse_key()s: back to dotted names
    value_size = 2 if len(pairs) // 2 <= 0xFFFF else 4
    table, cap, seed = build_table(names, [record_of[k] for k in keys], value_size)
    header = {
        "built_at": clock(),
        "key": key,
        "categories": list(categories),
        "source_ids": [s.source for s in inputs],
        "sources": {s.source: _source_info(s) for s in inputs},
        "counts": {
            "keys": len(keys),
            "rules": sum(len(s.rules) for s in inputs),
            "matches": len(matches),
            "pairs": len(pairs) // 2,
        },
        "matches": matches,
        "pairs": pairs,
        "table_cap": cap,
        "table_seed": seed,
        "value_size": value_size,
    }
    _write(path, header, table)
    return path


def _source_info(src: SourceInput) -> dict[str, Any]:
    return {
        "category": src.category,
        "digest": src.digest,
        "entries": len(src.rules),
        "rejected": src.rejected,
        **src.extra,
    }


def _intern(
    table: dict[str, list[Slot | None]], keys: Iterable[str]
) -> tuple[list[list[Any]], list[int], dict[str, int]]:
    match_ids: dict[Slot, int] = {}
    pair_ids: dict[tuple[int, int], int] = {}
    record_of: dict[str, int] = {}
    for k in keys:
        mids = []
        for slot in table[k]:
            if slot is None:
                mids.append(NO_MATCH)
            else:
                mids.append(match_ids.setdefault(slot, len(match_ids)))
        record_of[k] = pair_ids.setdefault((mids[0], mids[1]), len(pair_ids))
    matches = [[a.value, m, s, w, [list(r) for r in rw]] for a, m, s, w, rw in match_ids]
    pairs = [mid for pair in pair_ids for mid in pair]
    return matches, pairs, record_of


def _write(path: Path, header: dict[str, Any], table: bytes) -> None:
    """Lay out prefix, header and the 8-byte aligned name table, then the digest."""
    for _ in range(3):  # the offset lives in the header, whose length depends on it
        blob = json.dumps(header, separators=(",", ":")).encode()
        table_at = _align(PREFIX.size + len(blob))
        if header.get("table") == [table_at, len(table)]:
            break
        header["table"] = [table_at, len(table)]
    body = bytearray(PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)))
    body += blob
    body += bytes(table_at - len(body)) + table
    digest = hashlib.sha256(body).digest()
    assert len(digest) == DIGEST_SIZE
    atomic_write(path, bytes(body) + digest)


def _align(offset: int) -> int:
    return (offset + 7) & ~7


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        # A full disk must not leave a half file behind (it would keep the disk full) nor
        # end as a traceback: the caller keeps serving the previous index.
        tmp.unlink(missing_ok=True)
        raise ListError(f"{path}: cannot write: {exc.strerror or exc}") from None


__all__ = ["SourceInput", "build_index", "atomic_write", "reverse_key"]
