"""Canonical JSON bytes and hashes: the exact bytes a ledger record is signed and chained over."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from resolver.errors import AuditError

# The first record of a ledger links to this instead of a predecessor's hash.
GENESIS = "0" * 64


def _check(value: Any, where: str) -> None:
    # Floats have no single canonical text form across languages; the ledger holds integers.
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError(f"{where}: key {key!r} is not a string")
            _check(item, f"{where}.{key}")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
        return
    raise AuditError(f"{where}: {type(value).__name__} has no canonical JSON form")


def canonical_bytes(obj: Mapping[str, Any], *, check: bool = True) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the one byte form of a JSON object.

    ``check=False`` skips the type walk for objects that came out of ``json.loads`` and are
    checked field by field anyway (the verifier's hot loop: the walk costs more than the dump).
    """
    if check:
        _check(obj, "record")
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
