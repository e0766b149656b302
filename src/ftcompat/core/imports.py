"""Which ftcompat modules a piece of code pulls in: the result cache hashes them, repro scripts carry them.

Read from the source (``ast``), never by importing, so it works for a case file of any environment.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # src/ftcompat


def imported(source: str) -> set[str]:
    """The ftcompat module names ``source`` imports (``from ftcompat.x import y`` gives both x and x.y)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n == "ftcompat" or n.startswith("ftcompat.")}


def file_of(name: str) -> Path | None:
    """The source file of module ``name`` (a package's ``__init__.py``), or None when it is not a module."""
    base = PACKAGE.parent.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def name_of(path: Path) -> str:
    """The module name of a file under the package: ``ftcompat.harness.api``."""
    rel = Path(path).resolve().relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def closure(names: Iterable[str]) -> dict[str, Path]:
    """Every module reachable from ``names`` through ftcompat imports, with the packages that hold them."""
    todo, found = list(names), {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = file_of(name)
        if path is None:
            continue  # an attribute (``from ftcompat.x import Thing``), not a module
        found[name] = path
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
        todo += imported(path.read_text(encoding="utf-8"))
    return dict(sorted(found.items()))


def is_package(name: str) -> bool:
    """True for a package (a folder with ``__init__.py``)."""
    path = file_of(name)
    return path is not None and path.name == "__init__.py"
