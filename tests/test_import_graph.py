"""resolver/'s import graph has no cycle, counting imports inside functions and under TYPE_CHECKING.

A function-level import hides a cycle from Python until the day the function runs during an
import; a TYPE_CHECKING import hides it from Python but not from the reader or from mypy. Both
are still a dependency one way, so the settings → runtime direction is enforced here for all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "resolver"


def module_names(package: Path) -> dict[str, Path]:
    """Every module of the package by dotted name; a package is named by its __init__."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules `module` imports anywhere in its body (walks every node).

    Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, so those count too:
    a package whose ``__init__`` imports its own modules is in a cycle with each of them.
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_package, node)
            for alias in node.names:
                # `from package import module` depends on the module, not on the package's names
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    with_packages = {
        ".".join(name.split(".")[:n]) for name in found for n in range(1, name.count(".") + 2)
    }
    return {name for name in with_packages if name in known and name != module}


def graph(package: Path) -> dict[str, set[str]]:
    names = module_names(package)
    known = set(names)
    return {name: imports_of(name, path, known) for name, path in names.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search, sorted for stable output)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(edges):
        if start in state:
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))
    return None


def test_resolver_has_no_import_cycle() -> None:
    cycle = find_cycle(graph(PACKAGE))
    assert cycle is None, "import cycle in resolver/: " + " → ".join(cycle or ())


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        (
            {"pkg/__init__.py": "", "pkg/a.py": "from .b import x\n", "pkg/b.py": "import pkg.a\n"},
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
        (
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "def f():\n    from pkg.b import y\n",
                "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
            },
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
        (
            {
                "pkg/__init__.py": "from pkg.sub.m import Thing\n",
                "pkg/sub/__init__.py": "",
                "pkg/sub/m.py": "from ... import pkg\nfrom .. import Other\n",
            },
            ["pkg", "pkg.sub.m", "pkg"],
        ),
        (
            {
                "pkg/__init__.py": "",
                "pkg/p/__init__.py": "from .m import X\n",
                "pkg/p/m.py": "from .helper import y\n",
                "pkg/p/helper.py": "",
            },
            ["pkg.p", "pkg.p.m", "pkg.p"],
        ),
        (
            {
                "pkg/__init__.py": "",
                "pkg/p/__init__.py": '"""A docstring only."""\n',
                "pkg/p/m.py": "from pkg.p import helper\nimport pkg.q\n",
                "pkg/p/helper.py": "def f():\n    import pkg.q\n",
                "pkg/q.py": "from pkg import p\n",
            },
            None,
        ),
    ],
    ids=[
        "relative-and-absolute",
        "function-and-type-checking",
        "package-init",
        "facade-package-init",
        "from-package-import-module",
    ],
)
def test_the_walk_finds_cycles_wherever_imports_hide(
    tmp_path: Path, files: dict[str, str], cycle: list[str] | None
) -> None:
    assert find_cycle(graph(_write(tmp_path, files))) == cycle
