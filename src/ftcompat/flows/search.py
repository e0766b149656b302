"""``ftcompat pins --search``: build and run candidate combos until one passes every selected cell.

Each candidate is resolved by uv to exact versions (the newest the kept pins, the packages' metadata
and the bounds so far allow), skipped without a run when it falls inside a known issue of the
selected cases, and otherwise run as an ad-hoc combo: its environment and cells are cached under
``.ftcompat/adhoc/<id>/``, so asking again costs a resolve per candidate and nothing else. The plan
of each step is ``triage/search``'s; this module does the resolving, the running and the bounding.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.domain import STACK, Matrix
from ftcompat.core.errors import NotInstallable
from ftcompat.core.record import Record
from ftcompat.core.selector import match_column
from ftcompat.core.versions import public
from ftcompat.env import installer
from ftcompat.env.build import find_uv, index_args
from ftcompat.env.preflight import uv_reason
from ftcompat.flows import adhoc, search_bisect
from ftcompat.results.grid import Grid
from ftcompat.triage import searchplan
from ftcompat.triage.pins import Keep


@dataclass(frozen=True)
class Attempt:
    """One candidate: its versions, whether it ran, what did not pass and the step taken after it."""

    combo: str
    versions: dict
    ran: bool
    built: bool
    failing: tuple[str, ...]
    step: searchplan.Step | None
    note: str = ""  # "bisection step" for the steps a bisection ran


@dataclass
class Outcome:
    """What a search found: the passing combo (or None), every attempt, the evidence grid and its cost."""

    found: str | None
    attempts: list[Attempt] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    gave_up: str = ""
    seconds: float = 0.0

    @property
    def built(self) -> int:
        """Environments this search had to build (the others were reused)."""
        return sum(a.built for a in self.attempts)

    def evidence(self) -> Grid:
        """The cells the search ran (or found cached), one row per candidate that ran, as one grid."""
        # A candidate can run twice (a bisection's passing side, then the answer): its last grid counts.
        last = {c["id"]: i for i, g in enumerate(self.grids) for c in g.combos}
        grids = [g for i, g in enumerate(self.grids) if any(last[c["id"]] == i for c in g.combos)]
        cells = tuple(c for g in grids for c in g.cells)
        columns = tuple(dict.fromkeys(c for g in grids for c in g.columns))
        combos = tuple(c for g in grids for c in g.combos)
        stamp = max((g.generated_at for g in grids), default="")
        return Grid(cells, combos, columns, stamp)


def resolve(keep: Sequence[Keep], steps: Sequence[searchplan.Step], python: str) -> dict[str, str]:
    """The exact stack versions uv picks for these bounds on ``python``; NotInstallable with uv's reason."""
    return compile_stack(searchplan.requirements(keep, steps), python)


def compile_stack(reqs: Sequence[str], python: str, resolution: str = "highest") -> dict[str, str]:
    """The exact stack versions uv resolves ``reqs`` to on ``python``; NotInstallable with uv's reason."""
    uv = find_uv()
    if not uv:
        raise NotInstallable("resolving candidates needs uv (pip install uv)")
    env = dict(os.environ)
    cmd = [uv, "pip", "compile", "-", "--python-version", python, "--no-header", "--no-annotate", "--quiet",
           "--resolution", resolution, *index_args(env, "uv")]
    try:
        proc = installer.run(cmd, env, log=lambda *_: None, input="\n".join(reqs) + "\n")
    except NotInstallable as exc:
        why = uv_reason(getattr(exc, "detail", "") or str(exc))
        raise NotInstallable(f"no versions meet {' '.join(reqs)} on Python {python}: {why}") from exc
    lock = dict(line.strip().split("==", 1) for line in proc.stdout.splitlines() if "==" in line)
    names = {k.lower().replace("_", "-"): v for k, v in lock.items()}
    return {p: names[p] for p in STACK if p in names}


def run(matrix: Matrix, root: Path, selectors: Sequence[str], keep: Sequence[Keep], columns: Sequence[str],
        allow_known: bool = False, python: str = "3.11", max_envs: int = 10, max_minutes: float = 60.0,
        log=print, grid: Grid | None = None) -> Outcome:
    """Search until a candidate passes every selected cell, a bound is hit, or no package may move.

    ``grid`` (the grid the question was first asked of) gives a bisection its passing side.
    """
    return _Search(matrix, root, selectors, keep, columns, allow_known, python, max_envs, max_minutes, log,
                   grid).run()


@dataclass
class _Search:
    matrix: Matrix
    root: Path
    selectors: Sequence[str]
    keep: Sequence[Keep]
    columns: Sequence[str]
    allow_known: bool
    python: str
    max_envs: int
    max_minutes: float
    log: Callable[[str], None]
    grid: Grid | None
    out: Outcome = field(default_factory=lambda: Outcome(None))
    steps: list = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)
    no_good_side: str = ""  # why a bisection cannot start, once a first try showed it

    def __post_init__(self):
        self.frozen = searchplan.kept_exactly(self.keep)
        self.issues = [] if self.allow_known else [
            i for i in self.matrix.known_issues if any(match_column(s, c) for s in i.cells for c in self.columns)]
        self.case_ids = tuple(dict.fromkeys(s.split("[", 1)[0] for s in self.selectors))

    def bound(self, in_flight: int = 0) -> str:
        """Why no new environment may be built now (a bound is reached), or ""."""
        built = self.out.built + in_flight
        if built >= self.max_envs:
            return f"built {built} environments (--max-envs {self.max_envs})"
        if time.monotonic() - self.start > self.max_minutes * 60:
            return f"ran for {self.max_minutes:g} minutes (--max-minutes)"
        return ""

    def run(self) -> Outcome:
        """The loop: resolve a candidate, avoid known issues, run it, step back after a failure."""
        out, log = self.out, self.log
        while not out.found and not out.gave_up:
            out.gave_up = self.bound()
            if out.gave_up:
                break
            try:
                versions = resolve(self.keep, self.steps, self.python)
            except NotInstallable as exc:
                out.gave_up = str(exc)
                break
            combo = adhoc.adhoc_combo(versions, self.python, self.case_ids)
            stuck = next((i for i in self.issues if searchplan.trapped(versions, i, self.frozen)), None)
            if stuck:
                out.gave_up = (f"the kept pins fall inside known issue {stuck.id} ({stuck.url}: {stuck.summary}), "
                               f"which covers the selected cases; no candidate can leave it")
                break
            avoids = (searchplan.avoid_issue(versions, i, self.frozen) for i in self.issues)
            avoid = next((s for s in avoids if s), None)
            if avoid:
                log(f"search: {combo.id} falls in a known issue, not run: {avoid.why}; "
                    f"next: {avoid.package}{avoid.spec}")
                out.attempts.append(Attempt(combo.id, versions, False, False, (), avoid))
                self.steps.append(avoid)
                continue
            self.candidate(combo, versions)
        out.seconds = time.monotonic() - self.start
        return out

    def candidate(self, combo, versions: dict) -> None:
        """Run one candidate; record it, and the step after it (or why there is none)."""
        out = self.out
        venv = self.root / adhoc.WORK / "adhoc" / combo.id / "venv"
        built = not (venv / "bin" / "python").exists()
        self.log(f"search: running {combo.id} ({', '.join(f'{p} {v}' for p, v in versions.items())})")
        grid = adhoc.run_adhoc(self.matrix, self.root, combo, self.root / adhoc.WORK / "adhoc" / combo.id /
                               "grid.json", log=self.log)
        out.grids.append(grid)
        mine = [c for c in grid.cells if any(match_column(s, c.column) for s in self.selectors)]
        failing, skipped = searchplan.blockers(mine)
        if self.allow_known:
            failing = [c for c in failing if not c.known_issue]
        if mine and not failing and not skipped:
            out.attempts.append(Attempt(combo.id, versions, True, built, (), None))
            out.found = combo.id
            return
        shown = tuple(f"{c.column}: {c.status.value}" for c in (failing or skipped))
        # Recorded before the step is known, so a bisection counts this env against --max-envs,
        # skips this combo, and lists its own steps after it; the step is filled in below.
        attempt = len(out.attempts)
        out.attempts.append(Attempt(combo.id, versions, True, built, shown, None))
        step = self.next_step(failing, versions)
        out.attempts[attempt] = Attempt(combo.id, versions, True, built, shown, step)
        if step is None:
            out.gave_up = out.gave_up or (_stuck(failing, skipped) if mine
                                          else f"{combo.id} ran none of the selected cells")
            return
        self.log(f"search: {combo.id}: {step.why}; next: {step.package}{step.spec}")
        self.steps.append(step)

    def next_step(self, failing: list[Record], versions: dict) -> searchplan.Step | None:
        """The step a named failure gives; else a bisection's; else the next package in turn."""
        named = [c for c in failing if not searchplan.unnamed(c, versions, self.frozen)]
        for cell in named:
            step = searchplan.step_for(cell, versions, self.frozen, self.steps)
            if step:
                return step
        unnamed = [c for c in failing if c not in named]
        if not unnamed:
            return None
        step = self.bisect(unnamed[0], versions)
        if step or self.out.gave_up:
            return step
        return searchplan.step_for(unnamed[0], versions, self.frozen, self.steps)

    def bisect(self, cell: Record, versions: dict) -> searchplan.Step | None:
        """Bisect from the grid's passing side to this candidate; its step, or None (then: rule 4)."""
        side = searchplan.good_side(self.grid, self.selectors, self.keep, versions) if self.grid else None
        if side is None or self.no_good_side:
            self.log(f"search: {cell.column} names no package and "
                     f"{self.no_good_side or 'no grid combo passes every selected cell'}; stepping each back in turn")
            return None
        good_combo, good = side
        self.log(f"search: {cell.column} names no package; bisecting from grid combo {good_combo}")
        trials = search_bisect.AdhocTrials(self.matrix, self.root, self.selectors, self.case_ids, self.python,
                                           lambda: self.bound(sum(r.built for r in trials.ran)), self.log)
        result = None
        try:
            result = search_bisect.bisect(trials, good, versions, self.log)
        except search_bisect.OutOfBudget as exc:
            self.out.gave_up = f"{exc}, bisecting {cell.column} from {good_combo}"
        self._record(trials)
        if result is None:
            return None
        step = searchplan.bisected_step(result, cell.column, good_combo)
        if step is None:
            self.no_good_side = f"the bisection from {good_combo} found no package ({result.verdict}: {result.note})"
            self.log(f"search: {self.no_good_side}")
        return step

    def _record(self, trials) -> None:
        """Each bisection step that ran becomes an attempt, and its cells evidence."""
        seen = {a.combo for a in self.out.attempts}
        for ran in trials.ran:
            if ran.combo in seen:
                continue
            seen.add(ran.combo)
            self.out.grids.append(ran.grid)
            failing, skipped = searchplan.blockers(list(ran.cells))
            shown = tuple(f"{c.column}: {c.status.value}" for c in (failing or skipped))
            self.out.attempts.append(Attempt(ran.combo, ran.versions, True, ran.built, shown, None, "bisection step"))


def _stuck(failing: list[Record], skipped: list[Record]) -> str:
    """Why no step can follow: a skip, or failures that point only at kept packages."""
    if not failing:
        return f"{skipped[0].column} was skipped ({skipped[0].signature}); stepping back cannot make it run"
    cell = failing[0]
    issue = f", known issue {cell.known_issue['id']} ({cell.known_issue['url']})" if cell.known_issue else ""
    return (f"{cell.column} fails ({(cell.signature or '').splitlines()[0][:160]}{issue}) and every package it "
            f"points to is kept exactly")


def summary(out: Outcome) -> list[str]:
    """Markdown lines: every candidate, what it showed, the step after it, and the cost."""
    lines = ["## Search", "",
             f"{len(out.attempts)} candidate(s), {sum(a.ran for a in out.attempts)} run, {out.built} environment(s) "
             f"built, {out.seconds / 60:.1f} minutes.", ""]
    for a in out.attempts:
        versions = ", ".join(f"{p} {public(v)}" for p, v in a.versions.items())
        what = ("passes every selected cell" if a.ran and not a.failing
                else f"{'; '.join(a.failing[:4])}" if a.ran else "not run")
        what = f"{a.note}, {what}" if a.note else what
        lines.append(f"- `{a.combo}` ({versions}): {what}" + (f"; then {a.step.package}{a.step.spec}: {a.step.why}"
                                                             if a.step else ""))
    if out.gave_up:
        lines += ["", f"Gave up: {out.gave_up}."]
    return lines
