"""Reading YAML into typed values while collecting one-line problems with key paths.

Every problem reads ``FILE: key.path[2].leaf: what is wrong``, so an operator can fix a
config from the message alone; all problems are collected before failing.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING = object()


class Reader:
    """A position in a YAML document: reads typed children and records problems."""

    def __init__(self, value: Any, path: str, problems: list[str], source: str) -> None:
        self.value = value
        self.path = path
        self.problems = problems
        self.source = source

    def problem(self, message: str, path: str | None = None) -> None:
        where = path if path is not None else self.path
        self.problems.append(
            f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}"
        )

    def child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def section(self, key: str) -> Reader:
        """A mapping child (an absent one reads as empty)."""
        value = self._mapping().get(key, {})
        if value is None:
            value = {}
        child = Reader(value, self.child_path(key), self.problems, self.source)
        if not isinstance(value, dict):
            child.problem(f"must be a mapping, not {_kind(value)}")
            child.value = {}
        return child

    def items(self, key: str) -> Iterator[Reader]:
        """Each element of a list child (absent: none)."""
        value = self._mapping().get(key, [])
        if value is None:
            return
        if not isinstance(value, list):
            self.problem(f"must be a list, not {_kind(value)}", self.child_path(key))
            return
        for index, element in enumerate(value):
            yield Reader(element, f"{self.child_path(key)}[{index}]", self.problems, self.source)

    def has(self, key: str) -> bool:
        return key in self._mapping()

    def get(
        self,
        key: str,
        default: T,
        kind: type | tuple[type, ...],
        check: Callable[[Any], str | None] | None = None,
    ) -> T:
        """A scalar child of ``kind``; on a problem, records it and returns ``default``."""
        value = self._mapping().get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        path = self.child_path(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.problem(f"must be {_names(kinds)}, not a boolean", path)
            return default
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            self.problem(f"must be {_names(kinds)}, not {_kind(value)}: {value!r}", path)
            return default
        message = check(value) if check else None
        if message:
            self.problem(message, path)
            return default
        return value  # type: ignore[return-value]

    def reject_unknown(self, known: set[str]) -> None:
        for key in self._mapping():
            if key not in known:
                self.problem(unknown_key(str(key), known), self.child_path(str(key)))

    def _mapping(self) -> dict[str, Any]:
        return self.value if isinstance(self.value, dict) else {}


def unknown_key(key: str, known: set[str]) -> str:
    """'unknown key', with the likely intended key first when one is close (a typo)."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown key ({hint}known: {', '.join(sorted(known))})"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _names(kinds: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def in_range(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}: {value!r}"

    return check


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}: {value!r}"

    return check


def ip_address(value: Any) -> str | None:
    try:
        ipaddress.ip_address(str(value).split("%", 1)[0])
    except ValueError:
        return f"not an IP address: {value!r}"
    return None


def split_host_port(text: str, default_port: int | None) -> tuple[str, int]:
    """'1.2.3.4:53', '[::1]:53', '::1' (bare IPv6, default port), '1.2.3.4'."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"missing ']' in {text!r}")
        port_text = rest[1:] if rest.startswith(":") else rest
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected text after ']' in {text!r}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if ip_address(host):
        raise ValueError(f"not an IP address: {host!r}")
    if not port_text:
        if default_port is None:
            raise ValueError(f"missing port in {text!r} (HOST:PORT, IPv6 as [ADDR]:PORT)")
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)
