"""Ad-hoc combos from the command line, and the current environment, run through the same harness."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path

from ftcompat.config.cases import cases_of
from ftcompat.core.domain import STACK, Combo, Matrix, frozen_map
from ftcompat.env.build import find_uv
from ftcompat.harness.envinfo import versions
from ftcompat.results import grid as grid_mod
from ftcompat.runner.cells import WORK, Runner, install_and_run, run_cases

PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^=\s]+)$")


def parse_pins(args: list[str]) -> dict[str, str | None]:
    """Turn ``pkg==version`` arguments into pins; every stack package not named stays unpinned."""
    from packaging.version import InvalidVersion, Version

    from ftcompat.core.errors import InputError
    from ftcompat.env.releases import normalize

    pins: dict[str, str | None] = dict.fromkeys(STACK)
    given: dict[str, str] = {}
    for arg in args:
        m = PIN_RE.match(arg.strip())
        if not m:
            raise InputError(f"{arg!r} is not a pin; write PACKAGE==VERSION, e.g. transformers==4.53.3")
        try:
            Version(m.group(2))
        except InvalidVersion:
            raise InputError(f"{arg!r}: {m.group(2)!r} is not a valid version") from None
        name = normalize(m.group(1))
        if name in given and given[name] != m.group(2):
            raise InputError(f"{name} is pinned twice ({given[name]} and {m.group(2)}); pin each package once")
        given[name] = m.group(2)
        pins[name] = m.group(2)
    return pins


def adhoc_id(pins: dict[str, str | None], floor: bool, as_of: str | None, pre: bool = False) -> str:
    """A stable id from what was asked for: ``adhoc-transformers4.53.3-trl0.19.1``."""
    parts = [f"{p}{v}" for p, v in sorted(pins.items()) if v]
    if floor:
        parts.append("floor")
    if as_of:
        parts.append(f"asof{as_of[:10]}")
    if pre:
        parts.append("pre")
    return "-".join(["adhoc", *parts]) if parts else "adhoc-newest"


def adhoc_combo(pins, python: str, cases=("*",), floor=False, as_of=None, pre=False) -> Combo:
    """Build the combo the command line describes."""
    from ftcompat.core.errors import InputError

    if pre and floor:
        raise InputError("--pre takes the newest versions and --floor the lowest; choose one")
    prerelease = tuple(p for p in STACK if pins.get(p) is None) if pre else ()
    return Combo(adhoc_id(pins, floor, as_of, pre), python, frozen_map(pins), ("adhoc",), tuple(cases),
                 "ad-hoc pins from the command line", "lowest-direct" if floor else "highest", as_of, prerelease)


def make_venv(venv: Path, python: str) -> None:
    """Create (or keep) a virtual environment for ``python`` with uv, else the stdlib venv."""
    from ftcompat.env import installer

    if (venv / "bin" / "python").exists():
        return
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = find_uv()
    cmd = [uv, "venv", "-q", "-p", python, str(venv)] if uv else [f"python{python}", "-m", "venv", str(venv)]
    installer.run(cmd, dict(os.environ), log=lambda *_: None, delays=())  # a full disk is a MachineError


def _single(matrix: Matrix, combo: Combo) -> Matrix:
    return dataclasses.replace(matrix, combos=(combo,))


def run_adhoc(matrix: Matrix, root: Path, combo: Combo, out: Path, log=print) -> grid_mod.Grid:
    """Install the ad-hoc combo in its own env, run its cases and write a one-row grid to ``out``."""
    base = root / WORK / "adhoc" / combo.id
    make_venv(base / "venv", combo.python)
    cases = cases_of(matrix)
    cells_dir = base / "cells"
    reason = install_and_run(root, _single(matrix, combo), cases, combo, base / "venv",
                             cells_dir / f"{combo.id}.json", Runner(log=log),
                             protected=tuple(c.id for c in matrix.combos))
    if reason:
        log(f"not-installable: {reason}")
    grid = grid_mod.merge(_single(matrix, combo), cases, cells_dir, partial=True)
    grid_mod.save(grid, out)
    return grid


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
    missing = [p for p, v in combo.pins.items() if v is None]
    if missing:
        log(f"note: not installed there: {', '.join(missing)}; cases that need them will say so")
    from ftcompat.env.locks import combo_lock

    cases = cases_of(matrix)
    cells_dir = root / WORK / "current" / "cells"
    with combo_lock(root, combo.id, log):
        run_cases(root, _single(matrix, combo), cases, combo, python or sys.executable, cells_dir / "current.json",
                  Runner(log=log, env=dict(env or {})))
    grid = grid_mod.merge(_single(matrix, combo), cases, cells_dir, partial=True)
    grid_mod.save(grid, out)
    return grid


def issues_affecting(matrix: Matrix, installed: dict) -> list:
    """Known issues whose version specifiers this environment's versions satisfy."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    hits = []
    for issue in matrix.known_issues:
        try:
            if all(installed.get(p) and Version(installed[p]) in SpecifierSet(s, prereleases=True)
                   for p, s in issue.when.items()):
                hits.append(issue)
        except InvalidVersion:
            continue
    return hits
