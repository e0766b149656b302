"""One combo's run, the body of its nox session (``nox -s <combo>``): the ``COMBO`` pipeline.

    matrix.yaml + cases/ -> the combo, narrowed to the chosen cases -> runner.run(NoxVenv) -> results/cells/<combo>.json

Each stage is a small function ``ComboState -> ComboState``; ``stages.execute`` runs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftcompat.config import plan
from ftcompat.config.cases import CaseFile, cases_of
from ftcompat.config.matrix import load
from ftcompat.core.cellfile import atomic_write
from ftcompat.core.domain import Combo, Matrix
from ftcompat.core.errors import Busy, FtcompatError, InputError
from ftcompat.core.record import Record
from ftcompat.core.selector import match
from ftcompat.env import locks, preflight
from ftcompat.env.venv import NoxVenv
from ftcompat.flows import handoff
from ftcompat.flows.stages import execute
from ftcompat.runner import run as runner
from ftcompat.runner.cells import WORK


@dataclass(frozen=True)
class ComboState:
    """What the combo stages know so far: the inputs first, then what each stage produced."""

    root: Path  # the project: matrix.yaml, cases/, results/, .nox/
    combo_id: str
    venv: Path  # the environment nox made for the combo
    matrix_file: Path | None = None  # default: root/matrix.yaml
    selectors: str | None = None  # FTCOMPAT_CASES: case globs
    results: Path | None = None  # where results/ is (default: under root)
    log: Callable[[str], None] = print
    matrix: Matrix | None = None
    cases: Mapping[str, CaseFile] | None = None
    combo: Combo | None = None
    outcome: runner.Outcome | None = None
    done: str | None = None  # set by a stage after which nothing is left to do, saying why
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, compare=False)

    @property
    def out(self) -> Path:
        """The results folder."""
        return self.results or self.root / "results"

    @property
    def cell_file(self) -> Path:
        """results/cells/<combo>.json."""
        return self.out / "cells" / f"{self.combo_id}.json"


def only_cases(matrix: Matrix, combo: Combo, selectors: str | None) -> Combo:
    """Narrow a combo to its cases that match the globs in ``selectors`` (comma-separated), e.g. FTCOMPAT_CASES.

    A glob that matches no case of the matrix is a typo and is refused, naming the closest case ids.
    """
    if not selectors:
        return combo
    wanted = plan.case_selectors(selectors, matrix)
    ids = [c for c in plan.combo_cases(matrix, combo) if any(match(s, c) for s in wanted)]
    return dataclasses.replace(combo, cases=tuple(ids))


def load_config(state: ComboState) -> ComboState:
    """The matrix (or project file) and its cases, validated: bad input stops here, before anything runs."""
    matrix = load(state.matrix_file or state.root / "matrix.yaml")
    return dataclasses.replace(state, matrix=matrix, cases=cases_of(matrix))


def choose_cases(state: ComboState) -> ComboState:
    """The combo, narrowed to the cases FTCOMPAT_CASES selects (a selector that selects no case is refused)."""
    assert state.matrix is not None
    combo = only_cases(state.matrix, state.matrix.combo(state.combo_id), state.selectors)
    done = None if combo.cases else f"FTCOMPAT_CASES selects none of {state.combo_id}'s cases"
    if not done and not plan.combo_cases(state.matrix, combo):  # say, a combo that is only a handoff's side
        done = f"no case of the config runs in {state.combo_id}"
    return dataclasses.replace(state, combo=combo, done=done)


def check_output(state: ComboState) -> ComboState:
    """results/cells takes a file, before an install and hours of cases are spent on it."""
    preflight.check_writable(state.out / "cells", hint="fix the folder's permissions")
    return state


def run_combo(state: ComboState) -> ComboState:
    """The one runner over nox's env: pins installed or reused, cached cells kept, the rest run; a handoff
    pair's row runs the runner twice, once in each side's environment (``flows.handoff.run_pair``)."""
    assert state.matrix is not None and state.cases is not None and state.combo is not None
    if state.combo.pair:
        handoff.run_pair(state.matrix, state.root, state.combo, state.cell_file, state.log)
        return state
    env = NoxVenv(state.root, state.combo, state.venv, tuple(c.id for c in state.matrix.combos))
    job = runner.Job(state.root, state.matrix, state.cases, (state.cell_file,))
    outcome = runner.run(env, job, state.log)
    done = f"not-installable: {outcome.refused}" if outcome.refused else None
    return dataclasses.replace(state, outcome=outcome, done=done)


COMBO = (load_config, choose_cases, check_output, run_combo)


def records(state: ComboState) -> tuple[Record, ...]:
    """The records the combo's run left (none when it stopped early)."""
    return state.outcome.records if state.outcome else ()


def nox_session(session: Any, combo_id: str, root: Path | None = None, config: Path | None = None) -> None:
    """Build (or reuse) the combo's env, run its cases there and write <root>/results/cells/<combo>.json.

    Not-installable pins are a result (the session is skipped, saying why); bad input and machine
    failures stop the session with one line (the earlier results of the combo are kept).
    """
    root = Path(root or Path.cwd()).resolve()
    location = getattr(session.virtualenv, "location", None)  # a pair's session has none: its sides have their own
    start = ComboState(root, combo_id, Path(location) if location else root / WORK / "handoff" / combo_id,
                       matrix_file=config, selectors=os.environ.get("FTCOMPAT_CASES"), log=session.log)
    try:
        state = execute(COMBO, start)
    except InputError as exc:
        session.error(str(exc))
    except Busy as exc:  # said to ``ftcompat run`` too, which then exits with Busy's code, not the machine's
        atomic_write(locks.busy_marker(start.root, combo_id), str(exc))
        session.error(f"{type(exc).__name__}: {exc}")
    except FtcompatError as exc:  # the machine: one line, the earlier results unchanged
        session.error(f"{type(exc).__name__}: {exc}")
    if state.done:  # no case selected, or the pins cannot be installed: a result, not a failure
        session.skip(state.done)
