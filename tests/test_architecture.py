"""The house rules, read from the package's own imports: layers only import downwards, no circles,
no import hidden inside a function, and only the one runner calls the build and run stages."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# Lowest first: a package may import its own modules and those of lower layers, never a higher one.
LAYERS = ("core", "config", "harness", "results", "env", "triage", "runner", "flows", "cli")
TOP = len(LAYERS)  # ftcompat/noxsessions.py, the public face for a project's noxfile
HUB_CODE = "standins"  # copies of hub remote code, kept as the hub writes them


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "ftcompat").rglob("*.py"):
        if HUB_CODE in path.parts:
            continue
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return 0  # ftcompat/__init__.py: the version, nothing else
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else TOP


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module imported, line, inside a function) for every ftcompat import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
              for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ftcompat":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.append((full if full in MODULES else node.module, node.lineno, id(node) in nested))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in nested) for a in node.names if a.name.startswith("ftcompat")]
    return out


EDGES = {m: [(t, line, nested) for t, line, nested in _imports(p) if t != m] for m, p in MODULES.items()}


def upward_imports() -> list[str]:
    """Every import from a lower layer into a higher one."""
    return [f"{m} (layer {LAYERS[_layer(m)] if _layer(m) < TOP else 'top'}) imports {t}, line {line}"
            for m, edges in EDGES.items() for t, line, _ in edges if _layer(t) > _layer(m)]


def circles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w, _, _ in EDGES.get(v, ()):
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return found


def test_the_layers_are_the_packages_that_exist():
    packages = {p.name for p in (SRC / "ftcompat").iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS)


def test_no_module_imports_upwards():
    assert upward_imports() == []


def test_no_circle_between_modules_or_packages():
    assert circles() == []
    packages = {(m.split(".")[1], t.split(".")[1]) for m, edges in EDGES.items() for t, _, _ in edges
                if len(m.split(".")) > 2 and len(t.split(".")) > 2 and m.split(".")[1] != t.split(".")[1]}
    assert [(a, b) for a, b in packages if (b, a) in packages] == []


def test_no_ftcompat_import_hides_inside_a_function():
    assert [f"{m}:{line} imports {t}" for m, edges in EDGES.items() for t, line, nested in edges if nested] == []


def test_no_module_takes_a_private_name_of_another():
    taken = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftcompat"):
                taken += [f"{m} takes {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert taken == []


def _references(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.lineno for n in ast.walk(tree)
            if (isinstance(n, ast.Attribute) and n.attr == name) or (isinstance(n, ast.Name) and n.id == name)]


def test_only_the_runner_calls_the_build_and_run_stages():
    runner = "ftcompat.runner.run"
    # the run stage: the harness in an environment
    assert {m for m, p in MODULES.items() if _references(p, "run_cases")} == {runner}
    # the build stage: an environment's prepare(), composed only by environment kinds themselves (the
    # harness, the other half, has prepare()s of its own that run inside the environment)
    callers = {m for m, p in MODULES.items() if _references(p, "prepare")
               and not m.startswith(("ftcompat.env.", "ftcompat.harness."))}
    # a repair prepares the environment again, inside the runner's run (and only there)
    assert callers == {runner, "ftcompat.runner.repairs"}
    assert {m for m, p in MODULES.items() if _references(p, "repair_env")} == {runner}
    # installing pins happens only inside an environment kind
    installs = {m for m, p in MODULES.items() if "build" in {t.rsplit(".", 1)[-1] for t, _, _ in EDGES[m]}
                and _references(p, "install")}
    assert installs <= {m for m in MODULES if m.startswith("ftcompat.env.")}


def test_the_checks_catch_what_they_look_for(tmp_path, monkeypatch):
    # An upward import that closes a circle, planted in the edges of two real modules.
    monkeypatch.setitem(EDGES, "ftcompat.core.paths", [("ftcompat.flows.adhoc", 1, False)])
    assert any(u.startswith("ftcompat.core.paths (layer core) imports ftcompat.flows.adhoc") for u in upward_imports())
    assert any({"ftcompat.core.paths", "ftcompat.flows.adhoc"} <= set(c) for c in circles())
    # An import inside a function is seen as one; a module-level one is not.
    planted = tmp_path / "m.py"
    planted.write_text("from ftcompat.core import paths\n\ndef f():\n    from ftcompat.flows import adhoc\n")
    assert _imports(planted) == [("ftcompat.core.paths", 1, False), ("ftcompat.flows.adhoc", 4, True)]
