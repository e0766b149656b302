"""``ftcompat adhoc``: pins from the command line, the rest resolved by uv, run in an ad-hoc venv (``AdhocVenv``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from ftcompat.config.cases import cases_of
from ftcompat.config.matrix import python_problem
from ftcompat.config.plan import check_cases
from ftcompat.core import gitref
from ftcompat.core.domain import STACK, Combo, Matrix, frozen_map, torch_backend_problem
from ftcompat.core.errors import InputError
from ftcompat.env import gitsource
from ftcompat.env.preflight import check_writable, unknown_packages
from ftcompat.env.releases import normalize
from ftcompat.env.venv import AdhocVenv
from ftcompat.results import grid as grid_mod
from ftcompat.runner import run as runner
from ftcompat.runner.cells import WORK

PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^=\s]+)$")
GIT_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)@(\S+)$")  # trl@main, trl@v0.17.0, peft@<sha>


def parse_pins(args: list[str]) -> dict[str, str | None]:
    """Turn ``pkg==version`` arguments into pins; every stack package not named stays unpinned."""
    from packaging.version import InvalidVersion, Version


    pins: dict[str, str | None] = dict.fromkeys(STACK)
    given: dict[str, str] = {}
    for arg in args:
        m = PIN_RE.match(arg.strip())
        git = GIT_PIN_RE.match(arg.strip()) if not m else None
        if not m and not git:
            raise InputError(f"{arg!r} is not a pin; write PACKAGE==VERSION (e.g. transformers==4.53.3) or "
                             "PACKAGE@GITREF (e.g. trl@main)")
        if git:
            name, value = normalize(git.group(1)), gitref.pin(git.group(2))
            problem = gitref.pin_problem(name, git.group(2))
            if problem:
                raise InputError(f"{arg!r}: {problem}")
        else:
            assert m is not None
            try:
                Version(m.group(2))
            except InvalidVersion:
                raise InputError(f"{arg!r}: {m.group(2)!r} is not a valid version") from None
            name, value = normalize(m.group(1)), m.group(2)
        if name in given and given[name] != value:
            raise InputError(f"{name} is pinned twice ({given[name]} and {value}); pin each package once")
        given[name] = value
        pins[name] = value
    return pins


def adhoc_id(pins: dict[str, str | None], floor: bool, as_of: str | None, pre: bool = False,
             torch_backend: str | None = None) -> str:
    """A stable id from what was asked for: ``adhoc-transformers4.53.3-trl0.19.1``."""
    parts = [f"{p}{v}" if not gitref.ref_of(v) else f"{p}-git-{_slug(gitref.ref_of(v) or '')}"
             for p, v in sorted(pins.items()) if v]
    if floor:
        parts.append("floor")
    if as_of:
        parts.append(f"asof{as_of[:10]}")
    if pre:
        parts.append("pre")
    if torch_backend:  # a CPU torch and a CUDA one are two environments
        parts.append(f"torch-{torch_backend}")
    return "-".join(["adhoc", *parts]) if parts else "adhoc-newest"


def _slug(ref: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", ref.lower()).strip("-")[:40]


def adhoc_combo(pins, python: str, cases=("*",), floor=False, as_of=None, pre=False,
                torch_backend: str | None = None) -> Combo:
    """Build the combo the command line describes."""
    if not re.match(r"^\d\.\d{1,2}$", python or ""):
        raise InputError(f"--python {python!r}: give a version like 3.11")
    why = python_problem(python)
    if why:
        raise InputError(f"--python {python}: {why}")
    if pre and floor:
        raise InputError("--pre takes the newest versions and --floor the lowest; choose one")
    if torch_backend is not None and torch_backend_problem(torch_backend):
        raise InputError(f"--torch-backend: {torch_backend_problem(torch_backend)}")
    prerelease = tuple(p for p in STACK if pins.get(p) is None) if pre else ()
    return Combo(adhoc_id(pins, floor, as_of, pre, torch_backend), python, frozen_map(pins), ("adhoc",),
                 tuple(cases), "ad-hoc pins from the command line", "lowest-direct" if floor else "highest", as_of,
                 prerelease, torch_backend=torch_backend)


def single(matrix: Matrix, combo: Combo) -> Matrix:
    """The matrix with this combo as its only one (an ad-hoc or current combo is not in the config)."""
    return dataclasses.replace(matrix, combos=(combo,))


ASK_ABOVE_GB = 2.0  # CUDA downloads on a machine without a GPU above this are said first (``AdhocVenv.ask``)


def run_adhoc(matrix: Matrix, root: Path, combo: Combo, out: Path, log=print,
              repair: str | None = "cap", ask_above_gb: float | None = None) -> grid_mod.Grid:
    """Install the ad-hoc combo in its own env (repaired if an import breaks), run its cases, write ``out``."""
    base = root / WORK / "adhoc" / combo.id
    cases = cases_of(matrix)
    cells_dir = base / "cells"
    env = AdhocVenv(root, combo, base / "venv", tuple(c.id for c in matrix.combos), ask_above_gb)
    job = runner.Job(root, single(matrix, combo), cases, (cells_dir / f"{combo.id}.json",), repair=repair)
    outcome = runner.run(env, job, log)
    if outcome.refused:
        log(f"not-installable: {outcome.refused}")
    grid = grid_mod.merge(single(matrix, combo), cases, cells_dir, partial=True)
    grid_mod.save(grid, out)
    return grid


def flow(matrix: Matrix, root: Path, combo: Combo, out: Path, log: Callable[[str], None] = print,
         repair: str | None = "cap", yes: bool = False) -> grid_mod.Grid:
    """``ftcompat adhoc``: check the cases and that the grid file can be written, then build, run and write it."""
    check_cases(single(matrix, combo), combo)  # a typo builds nothing and overwrites no earlier grid
    combo = combo.with_sources(matrix.sources)
    gitsource.pin_commits(combo, root)  # an unknown ref or source is bad input (exit 2) before anything is built
    unknown = unknown_packages(combo)
    if unknown:
        raise InputError("; ".join(unknown))
    check_writable(out.parent, hint="pass --out to write the grid elsewhere")
    return run_adhoc(matrix, root, combo, out, log, repair, None if yes else ASK_ABOVE_GB)
