"""The search's bisection rule: when a failing cell names no package, bisect from a passing side.

The passing side is ``triage.search.good_side`` (from the grid); the failing side is the candidate
that just ran. ``triage.bisector.Bisector`` does the search; each of its steps is an ad-hoc combo
(``run.adhoc``), so a step's environment and cells are cached like every other candidate's and
asking again costs nothing. A step that would build a new environment past the search's bounds
stops the bisection (``OutOfBudget``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.domain import STACK, Matrix, frozen_map
from ftcompat.core.record import Record
from ftcompat.core.selector import match_column
from ftcompat.core.status import Status
from ftcompat.env import releases
from ftcompat.flows import adhoc
from ftcompat.results.grid import Grid
from ftcompat.triage.bisector import Bisector
from ftcompat.triage.trials import CellRun, Result, Trial


class OutOfBudget(Exception):
    """A bisection step would build an environment past ``--max-envs`` or run past ``--max-minutes``."""


@dataclass
class Ran:
    """One bisection step that ran: its ad-hoc combo, versions, whether it built an env, its grid."""

    combo: str
    versions: dict
    built: bool
    grid: Grid
    cells: tuple[Record, ...]


@dataclass
class AdhocTrials:
    """The Bisector's step runner: run the pins as an ad-hoc combo (cached) and return the selected cells."""

    matrix: Matrix
    root: Path
    selectors: Sequence[str]
    case_ids: tuple[str, ...]
    python: str
    budget: Callable[[], str]  # why no new environment may be built now, or ""
    log: Callable[[str], None] = print
    ran: list[Ran] = field(default_factory=list)

    def __call__(self, pins: dict) -> Trial:
        """Run one step; a not-installable step is a Trial with its reason (the Bisector skips it)."""
        combo = adhoc.adhoc_combo({p: pins.get(p) for p in STACK}, self.python, self.case_ids)
        base = self.root / adhoc.WORK / "adhoc" / combo.id
        built = not (base / "venv" / "bin" / "python").exists()
        why = self.budget() if built else ""
        if why:
            raise OutOfBudget(why)
        started = time.monotonic()
        grid = adhoc.run_adhoc(self.matrix, self.root, combo, base / "grid.json", log=self.log)
        cells = tuple(sorted((c for c in grid.cells if any(match_column(s, c.column) for s in self.selectors)),
                             key=lambda c: c.id))
        self.ran.append(Ran(combo.id, dict(pins), built, grid, cells))
        seconds = time.monotonic() - started
        refused = [c for c in cells if c.status == Status.NOT_INSTALLABLE]
        if refused or not cells:
            reason = (refused[0].signature or "not installable") if refused else "no selected cell ran"
            return Trial(reason=reason, install_s=seconds)
        env = (cells[0].env or {})
        return Trial((tuple(CellRun(c.column, c.status, c.signature or "") for c in cells),), "", 0.0, (seconds,),
                     frozen_map({"versions": env.get("versions"), "device": env.get("device")}))


def bisect(trials: AdhocTrials, good: dict, bad: dict, log=print) -> Result:
    """Bisect from ``good`` (passes) to ``bad`` (fails); OutOfBudget when a bound stops it first."""
    return Bisector(trials, releases.lister(), good, bad, log=lambda line: log(f"search: bisect {line}")).run()
