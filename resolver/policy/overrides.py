"""Local profile overrides (``policies.local_dir``): add profiles or change shipped ones' keys.

A site keeps only its differences, so the shipped profiles keep getting the project's updates.
Merge rules (documented in policies/README.md), applied to the parsed YAML before validation:

- a local file whose profile name (``name``, else the file name) is a shipped profile's
  overrides it; any other name is a new profile, built on ``extends: PROFILE`` if given;
- list keys (block, censored, security, allow, deny, schedules) extend the shipped list;
- mapping keys (safe_search, anti_bypass, block_answer) change only the keys given; the
  ``keywords`` lists extend;
- other keys (description, timezone, monitor_only, canary) replace the shipped value;
- ``replace: [KEY, …]`` (or ``replace: true`` for every key) replaces instead of extending.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resolver.errors import ConfigError

LIST_KEYS = ("block", "censored", "security", "allow", "deny", "schedules")
MAPPING_KEYS = ("safe_search", "keywords", "anti_bypass", "block_answer")
LOCAL_ONLY = ("replace", "extends")

Docs = dict[str, tuple[str, Any]]  # profile name -> (label for messages, parsed YAML)


def apply_local(shipped: Docs, local: Docs) -> Docs:
    """The shipped documents with every local one applied; ConfigError lists every problem."""
    merged = dict(shipped)
    problems: list[str] = []
    for name, (label, data) in local.items():
        if not isinstance(data, dict):
            problems.append(f"{label}: expected a mapping at the top level")
            continue
        base_name = name if name in shipped else data.get("extends")
        if name in shipped and "extends" in data:
            problems.append(f"{label}: extends: {name!r} is a shipped profile: this file "
                            "already overrides it, so extends is not needed")  # fmt: skip
            continue
        if base_name is not None and base_name not in shipped:
            known = ", ".join(sorted(shipped))
            problems.append(f"{label}: extends: unknown profile {base_name!r} (known: {known})")
            continue
        replaced = _replaced(label, data.get("replace", False), problems)
        if base_name is None:
            merged[name] = (label, _without_local_keys(data))
            continue
        base_label, base = shipped[base_name]
        body = merge(base if isinstance(base, dict) else {}, data, replaced)
        body["name"] = name
        merged[name] = (f"{label} (over {base_label})", body)
    if problems:
        raise ConfigError(problems)
    return merged


def merge(base: Mapping[str, Any], local: Mapping[str, Any], replaced: set[str]) -> dict[str, Any]:
    """``base`` with ``local``'s keys merged in by the rules above (pure)."""
    out = dict(base)
    for key, value in local.items():
        old = out.get(key)
        if key in LOCAL_ONLY:
            continue
        if key in replaced or old is None or value is None:
            out[key] = value
        elif key in LIST_KEYS and isinstance(old, list) and isinstance(value, list):
            out[key] = old + [item for item in value if item not in old]
        elif key in MAPPING_KEYS and isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge_mapping(key, old, value)
        else:
            out[key] = value  # a scalar, or a type mismatch the validator will name
    return out


def _merge_mapping(key: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for sub, value in new.items():
        previous = out.get(sub)
        if key == "keywords" and isinstance(previous, list) and isinstance(value, list):
            out[sub] = previous + [item for item in value if item not in previous]
        else:
            out[sub] = value
    return out


def _replaced(label: str, value: Any, problems: list[str]) -> set[str]:
    keys = set(LIST_KEYS + MAPPING_KEYS)
    if value is True:
        return keys
    if value is False or value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        problems.append(f"{label}: replace: expected true or a list of keys")
        return set()
    for k in value:
        if k not in keys:
            problems.append(
                f"{label}: replace: {k!r} is not a list or mapping key "
                f"(known: {', '.join(sorted(keys))})"
            )
    return set(value) & keys


def _without_local_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in LOCAL_ONLY}
