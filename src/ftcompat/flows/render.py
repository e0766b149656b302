"""The grid, ``ftcompat render`` (nox's ``render`` session): the ``GRID`` pipeline.

    results/cells/*.json (+ results/gpu/) -> grid, failures triaged -> failing-since dates
      -> grid.json, GRID.md, index.html -> results/history/
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.config.cases import CaseFile, cases_of
from ftcompat.config.matrix import load
from ftcompat.core.cellfile import atomic_write
from ftcompat.core.domain import Matrix
from ftcompat.core.redact import redact
from ftcompat.env import preflight
from ftcompat.flows.stages import execute
from ftcompat.results import grid as grid_mod
from ftcompat.results import history, page, render
from ftcompat.results.grid import Grid


@dataclass(frozen=True)
class GridState:
    """What the grid stages know so far: the inputs first, then what each stage produced."""

    root: Path
    matrix_file: Path | None = None  # default: root/matrix.yaml
    results: Path | None = None  # where results/ is (default: under root)
    keep_history: bool = True  # file the grid in results/history/
    log: Callable[[str], None] = print
    matrix: Matrix | None = None
    cases: Mapping[str, CaseFile] | None = None
    grid: Grid | None = None
    written: tuple[Path, ...] = ()
    done: str | None = None
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, compare=False)

    @property
    def matrix_path(self) -> Path:
        """The matrix file."""
        return self.matrix_file or self.root / "matrix.yaml"

    @property
    def out(self) -> Path:
        """The results folder."""
        return self.results or self.root / "results"


def load_config(state: GridState) -> GridState:
    """The matrix (or project file) and its cases, validated."""
    matrix = load(state.matrix_path)
    return dataclasses.replace(state, matrix=matrix, cases=cases_of(matrix))


def merge_cells(state: GridState) -> GridState:
    """results/cells/*.json (and the device check's results/gpu/) into one grid, failures triaged."""
    assert state.matrix is not None and state.cases is not None
    preflight.check_writable(state.out)
    merged = grid_mod.merge(state.matrix, dict(state.cases), (state.out / "cells", state.out / "gpu"))
    return dataclasses.replace(state, grid=merged)


def date_failures(state: GridState) -> GridState:
    """Each failing cell's failing-since date, from the grids kept in results/history."""
    assert state.grid is not None
    past = history.load_all(state.out / "history")
    since = history.failing_since(state.grid.cells, state.grid.generated_at, past)
    return dataclasses.replace(state, grid=grid_mod.with_failing_since(state.grid, since))


def write_grid(state: GridState) -> GridState:
    """grid.json, GRID.md and the self-contained index.html."""
    assert state.grid is not None
    paths = (state.out / "grid.json", state.out / "GRID.md", state.out / "index.html")
    grid_mod.save(state.grid, paths[0])
    source = Path(state.matrix.source).name if state.matrix else state.matrix_path.name
    atomic_write(paths[1], render.markdown(state.grid, source))
    atomic_write(paths[2], redact(page.render_page(state.grid)))
    return dataclasses.replace(state, written=paths)


def keep_history(state: GridState) -> GridState:
    """A copy of grid.json in results/history/, one per day and matrix (unless asked not to)."""
    if not state.keep_history:
        return state
    kept = history.add(state.out / "grid.json", state.matrix_path, state.out / "history")
    return dataclasses.replace(state, written=(*state.written, kept))


GRID = (load_config, merge_cells, date_failures, write_grid, keep_history)


def flow(root: Path, matrix_file: Path | None = None, results: Path | None = None,
         keep_history: bool = True) -> GridState:
    """``ftcompat render``: the GRID pipeline over results/cells; the state says what it wrote."""
    return execute(GRID, GridState(root, matrix_file=matrix_file, results=results, keep_history=keep_history))
