"""How much of each category the lists block, measured by leave-one-source-out.

For a category fed by sources S1..Sk, each source's names are an independent sample of the
category as far as the others are concerned: build the category without S (the other
sources' rules, with their scopes), then count how many of a fixed-seed sample of S's names
it blocks. A category with one source has nothing to measure it against and says so. The
figure is the generalisation one: how much of a list the filter has never seen it catches.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from resolver.lists.catalogue import Catalogue
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
    blocked: int  # by the category's other sources
    wider: int = 0  # by the profile without this source: every blocked category, keywords

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

    @property
    def wider_share(self) -> float | None:
        """Share the whole profile blocks without each source (None: nothing sampled)."""
        sampled = sum(s.sampled for s in self.sources)
        return sum(s.wider for s in self.sources) / sampled if sampled else None


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


@dataclass(frozen=True, slots=True)
class LoadedSource:
    """One source parsed once: its block rules and its sorted listed names."""

    id: str
    category: str
    rules: RuleSet
    names: tuple[str, ...]

    @classmethod
    def of(cls, source: str, category: str, rules: Sequence[Rule]) -> LoadedSource:
        """Keep what coverage needs of a source's parsed rules."""
        names = sorted({r.name for r in rules if r.action is not ListAction.ALLOW})
        return cls(source, category, RuleSet.of(rules), tuple(names))


# (left-out source id, name) -> whether the rest of a profile blocks the name
Wider = Callable[[str, str], bool]


def load_sources(
    catalogue: Catalogue, state_dir: Path, categories: Iterable[str]
) -> list[LoadedSource]:
    """Every source of the named categories that has a file, parsed once."""
    wanted = set(categories)
    out = []
    for src in catalogue.sources:
        path = source_file(src, state_dir) if src.category in wanted else None
        if path is not None:
            rules = parse_source(src, path, catalogue.protected).rules
            out.append(LoadedSource.of(src.id, src.category, rules))
    return out


def sample(names: Iterable[str], size: int, seed: int, salt: str) -> list[str]:
    """A fixed-seed sample: the same names for the same inputs, whatever the set order."""
    ordered = sorted(set(names))
    if len(ordered) <= size:
        return ordered
    return random.Random(f"{seed}:{salt}").sample(ordered, size)


def leave_one_out(
    category: str,
    sources: Sequence[LoadedSource],
    size: int,
    seed: int,
    wider: Wider | None = None,
) -> CategoryCoverage:
    """Coverage of each source's sample by the category built without that source, and
    (``wider``) by the rest of a profile without it."""
    # Exceptions-only sources (the vendor allow list) have nothing to sample or to block.
    own = [s for s in sources if s.category == category and s.names]
    results = []
    for left in own:
        others = [o.rules for o in own if o.id != left.id]
        picked = sample(left.names, size, seed, left.id)
        hits = [any(o.blocks(name) for o in others) for name in picked]
        wide = [
            h or (wider is not None and wider(left.id, n))
            for h, n in zip(hits, picked, strict=True)
        ]
        results.append(SourceCoverage(left.id, len(left.names), len(picked), sum(hits), sum(wide)))
    return CategoryCoverage(category, tuple(results))


def profile_wider(
    sources: Sequence[LoadedSource], blocked: Iterable[str], keyword: Callable[[str], object]
) -> Wider:
    """``Wider`` for a profile: its other blocked categories' sources, then its keywords."""
    kept = [(s.id, s.rules) for s in sources if s.category in set(blocked)]

    def blocks(left_out: str, name: str) -> bool:
        listed = any(rs.blocks(name) for sid, rs in kept if sid != left_out)
        return listed or keyword(name) is not None

    return blocks


def category_coverage(
    sources: Sequence[LoadedSource],
    categories: Sequence[str],
    size: int,
    seed: int,
    wider: Wider | None = None,
) -> list[CategoryCoverage]:
    """Leave-one-source-out coverage of each named category, in source order."""
    order = list(dict.fromkeys(s.category for s in sources))
    return [leave_one_out(c, sources, size, seed, wider) for c in order if c in categories]
