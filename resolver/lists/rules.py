"""The parsed form of one list entry and the per-file parse result, shared by every parser.

Matching semantics (the contract the compiled index implements, see blocklists/README.md):

- ``Scope.SUBTREE``: the listed name and every name below it (``example.com`` blocks
  ``example.com`` and ``www.example.com``), as Technitium, Unbound ``local-zone`` and
  AdBlock ``||name^`` do. Hosts, plain-domain and ``||name^`` entries use it.
- ``Scope.EXACT``: the listed name only (AdBlock ``|name^``, an RPZ QNAME trigger ``name``).
- ``Scope.WILDCARD``: names strictly below the listed one, not the name itself (RPZ and
  wildcard-list ``*.name``).
- Exceptions (``@@||name^``, RPZ ``rpz-passthru.``, allow lists) beat blocks at the same name;
  across names the most specific rule wins (suffixes are walked most specific first).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

from resolver.lists.match import ListAction

# The list formats a catalogue source may name; parsers.PARSERS has one parser for each.
# Here rather than in parsers.py so that reading a catalogue does not import every parser.
FORMATS = ("hosts", "domains", "wildcard", "allow", "adblock", "rpz")


class Scope(enum.IntEnum):
    """Which names a rule covers relative to its listed name."""

    SUBTREE = 0
    EXACT = 1
    WILDCARD = 2


class Rule(NamedTuple):
    """One usable list entry after normalisation (a tuple: compile handles millions)."""

    name: str
    scope: Scope
    action: ListAction
    rewrite: tuple[tuple[str, str], ...] = ()


class Problem(NamedTuple):
    """A rejected or skipped line: 1-based line number, the line as written, and why."""

    line_no: int
    text: str
    reason: str


@dataclass(slots=True)
class ParseResult:
    """What a parser made of one file: usable rules plus every rejected or skipped line."""

    rules: list[Rule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def entries(self) -> int:
        """Number of usable rules."""
        return len(self.rules)

    def reject(self, line_no: int, text: str, reason: str) -> None:
        """Record one line that produced no rule."""
        self.problems.append(Problem(line_no, text.rstrip("\r\n"), reason))
