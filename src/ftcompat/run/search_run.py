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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.domain import STACK, Matrix
from ftcompat.core.errors import NotInstallable
from ftcompat.core.record import Record
from ftcompat.core.selector import match_column
from ftcompat.core.versions import public
from ftcompat.results.grid import Grid
from ftcompat.run import adhoc, installer
from ftcompat.run.install import find_uv, index_args
from ftcompat.triage import search
from ftcompat.triage.pins import Keep


@dataclass(frozen=True)
class Attempt:
    """One candidate: its versions, whether it ran, what did not pass and the step taken after it."""

    combo: str
    versions: dict
    ran: bool
    built: bool
    failing: tuple[str, ...]
    step: search.Step | None


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
        cells = tuple(c for g in self.grids for c in g.cells)
        columns = tuple(dict.fromkeys(c for g in self.grids for c in g.columns))
        combos = tuple(c for g in self.grids for c in g.combos)
        stamp = max((g.generated_at for g in self.grids), default="")
        return Grid(cells, combos, columns, stamp)


def resolve(keep: Sequence[Keep], steps: Sequence[search.Step], python: str) -> dict[str, str]:
    """The exact stack versions uv picks for these bounds on ``python``; NotInstallable with uv's reason."""
    return compile_stack(search.requirements(keep, steps), python)


def compile_stack(reqs: Sequence[str], python: str, resolution: str = "highest") -> dict[str, str]:
    """The exact stack versions uv resolves ``reqs`` to on ``python``; NotInstallable with uv's reason."""
    from ftcompat.run.preflight import uv_reason

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
        allow_known: bool = False, python: str = "3.11", max_envs: int = 6, max_minutes: float = 60.0,
        log=print) -> Outcome:
    """Search until a candidate passes every selected cell, a bound is hit, or no package may move."""
    start = time.monotonic()
    out = Outcome(None)
    steps: list[search.Step] = []
    frozen = search.kept_exactly(keep)
    issues = [] if allow_known else [i for i in matrix.known_issues
                                     if any(match_column(s, c) for s in i.cells for c in columns)]
    case_ids = tuple(dict.fromkeys(s.split("[", 1)[0] for s in selectors))
    while True:
        if out.built >= max_envs:
            out.gave_up = f"built {out.built} environments (--max-envs {max_envs})"
            break
        if time.monotonic() - start > max_minutes * 60:
            out.gave_up = f"ran for {max_minutes:g} minutes (--max-minutes)"
            break
        try:
            versions = resolve(keep, steps, python)
        except NotInstallable as exc:
            out.gave_up = str(exc)
            break
        combo = adhoc.adhoc_combo(versions, python, case_ids)
        stuck = next((i for i in issues if search.trapped(versions, i, frozen)), None)
        if stuck:
            out.gave_up = (f"the kept pins fall inside known issue {stuck.id} ({stuck.url}: {stuck.summary}), "
                           f"which covers the selected cases; no candidate can leave it")
            break
        avoid = next((s for s in (search.avoid_issue(versions, i, frozen) for i in issues) if s), None)
        if avoid:
            log(f"search: {combo.id} falls in a known issue, not run: {avoid.why}; next: {avoid.package}{avoid.spec}")
            out.attempts.append(Attempt(combo.id, versions, False, False, (), avoid))
            steps.append(avoid)
            continue
        venv = root / adhoc.WORK / "adhoc" / combo.id / "venv"
        built = not (venv / "bin" / "python").exists()
        log(f"search: running {combo.id} ({', '.join(f'{p} {v}' for p, v in versions.items())})")
        grid = adhoc.run_adhoc(matrix, root, combo, root / adhoc.WORK / "adhoc" / combo.id / "grid.json", log=log)
        out.grids.append(grid)
        mine = [c for c in grid.cells if any(match_column(s, c.column) for s in selectors)]
        failing, skipped = search.blockers(mine)
        if allow_known:
            failing = [c for c in failing if not c.known_issue]
        if mine and not failing and not skipped:
            out.attempts.append(Attempt(combo.id, versions, True, built, (), None))
            out.found = combo.id
            break
        step = _next_step(failing, skipped, versions, frozen, steps)
        out.attempts.append(Attempt(combo.id, versions, True, built,
                                    tuple(f"{c.column}: {c.status.value}" for c in (failing or skipped)), step))
        if step is None:
            out.gave_up = _stuck(failing, skipped) if mine else f"{combo.id} ran none of the selected cells"
            break
        log(f"search: {combo.id}: {step.why}; next: {step.package}{step.spec}")
        steps.append(step)
    out.seconds = time.monotonic() - start
    return out


def _next_step(failing: list[Record], skipped: list[Record], versions: dict, frozen: set[str],
               steps: list[search.Step]) -> search.Step | None:
    for cell in failing:
        step = search.step_for(cell, versions, frozen, steps)
        if step:
            return step
    return None


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
        lines.append(f"- `{a.combo}` ({versions}): {what}" + (f"; then {a.step.package}{a.step.spec}: {a.step.why}"
                                                             if a.step else ""))
    if out.gave_up:
        lines += ["", f"Gave up: {out.gave_up}."]
    return lines
