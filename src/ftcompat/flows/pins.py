"""``ftcompat pins``: the newest combo of the grid whose selected cells pass, else (``--search``) one found by running.

The grid answers first (``triage.pins``); only when no combo of it qualifies does ``--search`` build
and run candidates (``flows.search``, each an ad-hoc environment through the one runner). Either way
the answer is written as constraints.txt, requirements.txt and PINS.md, or nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftcompat.core.domain import Matrix
from ftcompat.core.errors import InputError, NoAnswer
from ftcompat.core.selector import match_column
from ftcompat.flows import search
from ftcompat.results import grid as grid_mod
from ftcompat.results import gridload
from ftcompat.results.grid import Grid
from ftcompat.triage import pins, pinsfiles
from ftcompat.triage.pins import Keep


@dataclass(frozen=True)
class Ask:
    """What ``ftcompat pins`` was asked: the grid, the cases that must pass, the pins to keep, the search's bounds."""

    grid: str
    cases: tuple[str, ...] = ("*",)
    keep: tuple[str, ...] = ()
    allow_known: bool = False
    out: Path = Path("results/pins")
    search: bool = False
    max_envs: int = 10
    max_minutes: float = 60.0
    python: str = "3.11"


def flow(matrix: Matrix | None, root: Path, ask: Ask, log: Callable[[str], None] = print) -> Path:
    """Answer from the grid, or search; write the answer's files and return their folder (NoAnswer: none written)."""
    grid = gridload.load(ask.grid)
    keep = [pins.parse_keep(k) for k in ask.keep]
    pins.check_selectors(grid, list(ask.cases), ask.grid)  # refuse a typo before anything is written
    pins.check_keep(grid, keep, ask.grid)
    answer = pins.safe_pins(grid, list(ask.cases), ask.allow_known, keep)
    if answer.pick is None and ask.search:
        if matrix is None:
            raise InputError("--search needs the config its cases come from")
        return _search(matrix, root, ask, grid, keep, log)
    report = pinsfiles.report_text(answer)
    log(report)
    if answer.pick is not None and ask.search:
        log("The grid answers: no search was needed.")
    if answer.pick is None:
        # Nothing is written: the folder keeps its last answer whole rather than half of a new one.
        raise NoAnswer(f"no combo qualifies; nothing written to {ask.out} (its files, if any, are an earlier answer)")
    _write(ask.out, answer, report)
    log(f"wrote {ask.out / 'constraints.txt'} (use: pip install -c {ask.out / 'constraints.txt'} ...), "
        f"{ask.out / 'requirements.txt'} and {ask.out / 'PINS.md'}")
    return ask.out


def _search(matrix: Matrix, root: Path, ask: Ask, grid: Grid, keep: list[Keep], log: Callable[[str], None]) -> Path:
    """No combo of the grid answers: build and run candidates until one does (``flows.search``)."""
    python = next((k.spec[2:] for k in keep if k.name == "python" and k.spec.startswith("==")), ask.python)
    columns = [c for c in grid.columns if any(match_column(s, c) for s in ask.cases)]
    log(f"no combo of {ask.grid} answers; searching (at most {ask.max_envs} new environments, "
        f"{ask.max_minutes:g} minutes)")
    stack_keep = [k for k in keep if k.name != "python"]
    result = search.run(matrix, root, list(ask.cases), stack_keep, columns, ask.allow_known, python, ask.max_envs,
                        ask.max_minutes, grid=grid)
    lines = search.summary(result)
    if not result.found:
        log("\n".join(lines))
        raise NoAnswer(f"the search found no combo: {result.gave_up}; nothing written to {ask.out}")
    evidence = result.evidence()
    answer = pins.safe_pins(evidence, list(ask.cases), ask.allow_known, keep)
    report = pinsfiles.report_text(answer) + "\n" + "\n".join(lines) + "\n\nThe cells behind this answer are in " \
        "`search-grid.json` beside this file.\n"
    log(report)
    ask.out.mkdir(parents=True, exist_ok=True)
    grid_mod.save(evidence, ask.out / "search-grid.json")
    _write(ask.out, answer, report)
    log(f"wrote {ask.out / 'constraints.txt'}, {ask.out / 'requirements.txt'}, {ask.out / 'PINS.md'} and "
        f"{ask.out / 'search-grid.json'}")
    return ask.out


def _write(out: Path, answer: pins.SafePins, report: str) -> None:
    """constraints.txt, requirements.txt and PINS.md, all or none (``pinsfiles.write_all``)."""
    pinsfiles.write_all(out, {"constraints.txt": pinsfiles.constraints_text(answer),
                              "requirements.txt": pinsfiles.requirements_text(answer), "PINS.md": report})
