"""How much of each category the lists block, measured by leave-one-source-out.

For a category fed by sources S1..Sk, each source's names are an independent sample of the
category as far as the others are concerned: build the category without S (the other
sources' rules, with their scopes), then count how many of a fixed-seed sample of S's names
it blocks. A category with one source has nothing to measure it against and says so. The
figure is the generalisation one: how much of a list the filter has never seen it catches.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from resolver.lists.catalogue import Catalogue, Category
from resolver.lists.match import ListAction
from resolver.lists.rules import Rule, Scope
from resolver.lists.snapshot import parse_source, source_file

DEFAULT_SAMPLE = 300
DEFAULT_SEED = 19


@dataclass(frozen=True, slots=True)
class SourceCoverage:
    """One left-out source: how many of its sampled names the category's other sources block."""

    source: str
    names: int
    sampled: int
    blocked: int

    @property
    def share(self) -> float:
        """Blocked share of the sample (0 when nothing was sampled)."""
        return self.blocked / self.sampled if self.sampled else 0.0


@dataclass(frozen=True, slots=True)
class CategoryCoverage:
    """Leave-one-source-out coverage of one category (``share`` over all its samples)."""

    category: str
    sources: tuple[SourceCoverage, ...]

    @property
    def single_source(self) -> bool:
        """True when fewer than two sources have names: nothing to measure against."""
        return sum(1 for s in self.sources if s.names) < 2

    @property
    def share(self) -> float | None:
        """Blocked share of every source's sample together; None for a single source."""
        if self.single_source:
            return None
        sampled = sum(s.sampled for s in self.sources)
        return sum(s.blocked for s in self.sources) / sampled if sampled else None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Block rules of some sources, by scope, for a pure suffix-walk membership test."""

    subtree: frozenset[str]
    exact: frozenset[str]
    wildcard: frozenset[str]

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> RuleSet:
        """Keep block rules (not exceptions) by scope."""
        by_scope: dict[Scope, set[str]] = {s: set() for s in Scope}
        for rule in rules:
            if rule.action is not ListAction.ALLOW:
                by_scope[rule.scope].add(rule.name)
        return cls(*(frozenset(by_scope[s]) for s in Scope))

    def blocks(self, name: str) -> bool:
        """Whether a rule covers ``name`` (itself, or a parent's subtree or wildcard)."""
        if name in self.exact or name in self.subtree:
            return True
        dot = name.find(".")
        while dot >= 0:
            parent = name[dot + 1 :]
            if parent in self.subtree or parent in self.wildcard:
                return True
            dot = name.find(".", dot + 1)
        return False


def source_rules(
    catalogue: Catalogue, category: Category, state_dir: Path
) -> dict[str, list[Rule]]:
    """Each source of ``category`` that has a file: its parsed rules."""
    out: dict[str, list[Rule]] = {}
    for src in category.sources:
        path = source_file(src, state_dir)
        if path is not None:
            out[src.id] = parse_source(src, path, catalogue.protected).rules
    return out


def sample(names: Iterable[str], size: int, seed: int, salt: str) -> list[str]:
    """A fixed-seed sample: the same names for the same inputs, whatever the set order."""
    ordered = sorted(set(names))
    if len(ordered) <= size:
        return ordered
    return random.Random(f"{seed}:{salt}").sample(ordered, size)


def leave_one_out(
    category: str, rules: dict[str, list[Rule]], size: int, seed: int
) -> CategoryCoverage:
    """Coverage of each source's sample by the category built without that source."""
    results = []
    for left_out, own in rules.items():
        names = [r.name for r in own if r.action is not ListAction.ALLOW]
        if not names:
            continue  # an exceptions-only source (vendor allow list) has nothing to sample
        others = RuleSet.of(r for sid, rs in rules.items() if sid != left_out for r in rs)
        picked = sample(names, size, seed, left_out)
        blocked = sum(1 for name in picked if others.blocks(name))
        results.append(SourceCoverage(left_out, len(set(names)), len(picked), blocked))
    return CategoryCoverage(category, tuple(results))


def measured_categories(catalogue: Catalogue, wanted: Sequence[str]) -> list[Category]:
    """The catalogue's categories named in ``wanted``, in catalogue order."""
    return [c for c in catalogue.categories if c.id in wanted]


def category_coverage(
    catalogue: Catalogue, state_dir: Path, categories: Sequence[str], size: int, seed: int
) -> list[CategoryCoverage]:
    """Leave-one-source-out coverage of each named category."""
    return [
        leave_one_out(c.id, source_rules(catalogue, c, state_dir), size, seed)
        for c in measured_categories(catalogue, categories)
    ]
