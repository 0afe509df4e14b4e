"""YAML documents read safely, with libyaml's parser when PyYAML was built with it.

The pure-Python SafeLoader takes ~32 ms for the shipped catalogue, libyaml's ~2 ms: every
start reads the catalogue, the profiles and the config. A document libyaml rejects is read
again by the pure-Python loader, whose error names the problem better ("expected ',' or ']'"
rather than "did not find expected ',' or ']'") on the line operators expect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_FAST: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(document: str | bytes) -> Any:
    """The document's data (yaml.safe_load's result); yaml.YAMLError if it is not valid."""
    try:
        return yaml.load(document, Loader=_FAST)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return yaml.safe_load(document)  # raises again, with the clearer message


def read_text(path: Path) -> str:
    """A YAML file's text; ValueError ``line N: not UTF-8 text (...)`` for a file saved in a
    Windows code page (Notepad's "ANSI" is cp1258 on a Vietnamese Windows). OSError as is."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"line {line}: not UTF-8 text (save the file as UTF-8)") from None


def problem(exc: yaml.YAMLError) -> str:
    """One line for an operator: ``line 3: not valid YAML: expected ',' or ']'`` (PyYAML's own
    text spans several lines, with a caret under the column)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return f"{where}not valid YAML: {getattr(exc, 'problem', None) or exc}"


def load_unique(document: str | bytes) -> Any:
    """As ``load``, but a key given twice in one mapping is a yaml.YAMLError naming both lines."""
    try:
        return yaml.load(document, Loader=_UniqueFast)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return yaml.load(document, Loader=_UniquePure)  # noqa: S506 (a safe loader)


def _check_unique(loader: Any, node: yaml.MappingNode) -> None:
    """YAML keys are unique, but PyYAML silently keeps the last of two: in a config a second
    ``listen:`` further down would quietly replace the first."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line
        except TypeError:  # an unhashable key: the constructor itself reports it
            continue


class _UniqueFast(_FAST):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        _check_unique(self, node)
        return super().construct_mapping(node, deep=deep)


class _UniquePure(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        _check_unique(self, node)
        return super().construct_mapping(node, deep=deep)
