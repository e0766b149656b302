"""ftcompat's pipeline, stage by stage: the one place that says what runs, in what order.

Modelled on nox's ``tasks.py``: each stage is a small function that takes the state so far and
returns it with its own part added, and ``execute`` runs a list of them. Data flows

    matrix.yaml + cases/ -> plan -> environment -> harness (in the env) -> results/cells/<combo>.json
    results/cells/*.json -> grid -> grid.json, GRID.md, index.html, history -> pins, reports, bisection

``COMBO`` is one combo's nox session (``nox -s <combo>``); ``GRID`` is ``ftcompat render`` (the
``render`` session). Pins, bug reports and bisections read the grid these write (``triage/``). To
add a stage, write a function ``State -> State`` here, next to the stages it sits between, and put
it in the tuple; the stages themselves call into ``config/``, ``run/`` and ``results/``, and print
nothing but through ``state.log``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.config.cases import CaseFile, cases_of
from ftcompat.config.matrix import load
from ftcompat.core.domain import Combo, Matrix
from ftcompat.core.record import Record
from ftcompat.results.grid import Grid

Stage = Callable[["State"], "State"]


@dataclass(frozen=True)
class State:
    """What the stages know so far. The inputs come first; each stage fills in what it produced."""

    root: Path  # the project: matrix.yaml, cases/, results/, .nox/
    matrix_file: Path | None = None  # default: root/matrix.yaml
    combo_id: str | None = None  # COMBO: the combo to run
    selectors: str | None = None  # COMBO: FTCOMPAT_CASES, case globs
    venv: Path | None = None  # COMBO: the environment nox made for it
    results: Path | None = None  # where results/ is (default: under root)
    keep_history: bool = True  # GRID: file the grid in results/history/
    log: Callable[[str], None] = print
    matrix: Matrix | None = None
    cases: Mapping[str, CaseFile] | None = None
    combo: Combo | None = None
    versions: Mapping[str, str | None] | None = None
    refused: str | None = None  # the installer's reason when the pins cannot be installed
    records: tuple[Record, ...] = ()
    grid: Grid | None = None
    written: tuple[Path, ...] = ()
    done: str | None = None  # set by a stage after which nothing is left to do, saying why
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, compare=False)

    @property
    def matrix_path(self) -> Path:
        """The matrix file."""
        return self.matrix_file or self.root / "matrix.yaml"

    @property
    def out(self) -> Path:
        """The results folder."""
        return self.results or self.root / "results"

    @property
    def cell_file(self) -> Path:
        """results/cells/<combo>.json."""
        return self.out / "cells" / f"{self.combo.id}.json"


def execute(stages: Iterable[Stage], state: State) -> State:
    """Run the stages in order until one says it is done; what a stage held open is closed at the end."""
    with state.exits:
        for stage in stages:
            state = stage(state)
            if state.done:
                break
    return state


# ---- both pipelines -------------------------------------------------------------------------------


def load_config(state: State) -> State:
    """The matrix (or project file) and its cases, validated: bad input stops here, before anything runs."""
    matrix = load(state.matrix_path)
    return dataclasses.replace(state, matrix=matrix, cases=cases_of(matrix))


# ---- one combo: `nox -s <combo>` ------------------------------------------------------------------


def choose_cases(state: State) -> State:
    """The combo, narrowed to the cases FTCOMPAT_CASES selects (a selector that selects no case is refused)."""
    from ftcompat.runner.cells import only_cases

    combo = only_cases(state.matrix, state.matrix.combo(state.combo_id), state.selectors)
    done = None if combo.cases else f"FTCOMPAT_CASES selects none of {state.combo_id}'s cases"
    return dataclasses.replace(state, combo=combo, done=done)


def check_output(state: State) -> State:
    """results/cells takes a file, before an install and hours of cases are spent on it."""
    from ftcompat.env.preflight import check_writable

    check_writable(state.out / "cells", hint="fix the folder's permissions")
    return state


def lock_combo(state: State) -> State:
    """One run per combo at a time: a second waits for the first (``Busy`` after FTCOMPAT_LOCK_WAIT)."""
    from ftcompat.env import locks

    state.exits.enter_context(locks.combo_lock(state.root, state.combo.id, state.log))
    return state


def build_environment(state: State) -> State:
    """The pins installed into the combo's env, or reused; refused pins make the cells say not-installable."""
    from ftcompat.runner.cells import Runner, build_env

    built = build_env(state.root, state.matrix, state.cases, state.combo, state.venv, state.cell_file,
                      Runner(log=state.log))
    return dataclasses.replace(state, versions=built.versions, refused=built.refused,
                               done=f"not-installable: {built.refused}" if built.refused else None)


def run_harness(state: State) -> State:
    """The cases in the env under the harness: cached cells reused, a killed run resumed, transients rerun."""
    from ftcompat.runner.cells import Runner, run_cases

    records = run_cases(state.root, state.matrix, state.cases, state.combo, str(state.venv / "bin" / "python"),
                        state.cell_file, Runner(log=state.log), state.versions)
    return dataclasses.replace(state, records=tuple(records), written=(state.cell_file,))


COMBO: tuple[Stage, ...] = (load_config, choose_cases, check_output, lock_combo, build_environment, run_harness)


# ---- the grid: `ftcompat render` ------------------------------------------------------------------


def merge_cells(state: State) -> State:
    """results/cells/*.json (and the device check's results/gpu/) into one grid, failures triaged."""
    from ftcompat.env import preflight
    from ftcompat.results import grid as grid_mod

    preflight.check_writable(state.out)
    return dataclasses.replace(state, grid=grid_mod.merge(state.matrix, state.cases,
                                                                 (state.out / "cells", state.out / "gpu")))


def date_failures(state: State) -> State:
    """Each failing cell's failing-since date, from the grids kept in results/history."""
    from ftcompat.results import grid as grid_mod
    from ftcompat.results import history

    past = history.load_all(state.out / "history")
    since = history.failing_since(state.grid.cells, state.grid.generated_at, past)
    return dataclasses.replace(state, grid=grid_mod.with_failing_since(state.grid, since))


def write_grid(state: State) -> State:
    """grid.json, GRID.md and the self-contained index.html."""
    from ftcompat.core.cellfile import atomic_write
    from ftcompat.core.redact import redact
    from ftcompat.results import grid as grid_mod
    from ftcompat.results import page, render

    paths = (state.out / "grid.json", state.out / "GRID.md", state.out / "index.html")
    grid_mod.save(state.grid, paths[0])
    atomic_write(paths[1], render.markdown(state.grid))
    atomic_write(paths[2], redact(page.render_page(state.grid)))
    return dataclasses.replace(state, written=paths)


def keep_history(state: State) -> State:
    """A copy of grid.json in results/history/, one per day and matrix (unless asked not to)."""
    from ftcompat.results import history

    if not state.keep_history:
        return state
    kept = history.add(state.out / "grid.json", state.matrix_path, state.out / "history")
    return dataclasses.replace(state, written=(*state.written, kept))


GRID: tuple[Stage, ...] = (load_config, merge_cells, date_failures, write_grid, keep_history)
