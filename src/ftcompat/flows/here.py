"""``ftcompat here``: the cases in an existing environment (``Existing``), nothing installed or written inside it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ftcompat.config.cases import cases_of
from ftcompat.config.plan import check_cases
from ftcompat.core.domain import STACK, Combo, KnownIssue, Matrix, frozen_map
from ftcompat.env import target
from ftcompat.env.existing import Existing
from ftcompat.flows.adhoc import single
from ftcompat.harness.envinfo import versions
from ftcompat.results import grid as grid_mod
from ftcompat.runner import run as runner
from ftcompat.runner.cells import WORK


def current_combo(cases=("*",), described: dict | None = None) -> Combo:
    """An environment as a combo pinned to what is installed: this interpreter's, or one ``target.describe``d."""
    if described is None:
        described = {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "versions": versions(),
                     "prefix": sys.prefix}
    installed = described["versions"]
    pins = {p: installed.get(p) for p in STACK}
    return Combo("current", described["python"], frozen_map(pins), ("current",), tuple(cases),
                 "the environment of the interpreter asked about")


def run_here(matrix: Matrix, root: Path, combo: Combo, out: Path, log=print, python: str | None = None,
             env: dict | None = None) -> grid_mod.Grid:
    """Run the cases in an existing interpreter (default: this one), creating nothing in its environment,
    and write a one-row grid to ``out``. ``env`` carries the harness to an interpreter that lacks it."""
    cases = cases_of(matrix)
    cells_dir = root / WORK / "current" / "cells"
    existing = Existing(combo, python or sys.executable, dict(env or {}))
    runner.run(existing, runner.Job(root, single(matrix, combo), cases, (cells_dir / "current.json",)), log)
    grid = grid_mod.merge(single(matrix, combo), cases, cells_dir, partial=True)
    grid_mod.save(grid, out)
    return grid


def issues_affecting(matrix: Matrix, installed: Mapping[str, str | None]) -> list[KnownIssue]:
    """Known issues whose version specifiers this environment's versions satisfy."""
    hits = []
    for issue in matrix.known_issues:
        try:
            if all((v := installed.get(p)) and Version(v) in SpecifierSet(s, prereleases=True)
                   for p, s in issue.when.items()):
                hits.append(issue)
        except InvalidVersion:
            continue
    return hits


def flow(matrix: Matrix, root: Path, cases: Sequence[str], out: Path, python: str | None = None,
         venv: str | None = None, log: Callable[[str], None] = print) -> tuple[Combo, grid_mod.Grid]:
    """``ftcompat here``: this interpreter's environment, or the one ``--python``/``--venv`` names, read and run."""
    check_cases(single(matrix, current_combo(tuple(cases))), current_combo(tuple(cases)))
    interpreter = env = described = None
    if python or venv:
        interpreter = target.interpreter(python, venv)
        described = target.describe(interpreter, root)
        env = target.environment(interpreter, root, described["python"])
    combo = current_combo(tuple(cases), described)
    grid = run_here(matrix, root, combo, out, log, python=str(interpreter) if interpreter else None, env=env)
    return combo, grid
