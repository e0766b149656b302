"""``ftcompat upgrade``: run the cases on a target next to the current environment and say what changes.

The target holds every package where it is except the ``--to`` pins; when those cannot install next
to the others, the fewest other packages move, each to the lowest version that installs (uv's
``lowest-direct``). If the target fails a selected cell, ``pins --search`` with the ``--to`` pins kept
looks for extra pins that keep every cell green; then each of them is dropped again if every cell stays
green without it, so no single pin of the answer is unneeded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.domain import STACK, Matrix
from ftcompat.core.errors import InputError, NotInstallable
from ftcompat.core.record import Record
from ftcompat.core.selector import match, match_column
from ftcompat.core.status import Status
from ftcompat.flows import adhoc, handoff, here, search
from ftcompat.results import grid as grid_mod
from ftcompat.results import gridload
from ftcompat.results.grid import Grid
from ftcompat.triage import upgradeplan
from ftcompat.triage.pins import NEWNESS, Keep


@dataclass
class Result:
    """What an upgrade check found."""

    current: dict
    target: dict
    moved: tuple[str, ...]  # packages that had to move for the --to pins to install
    target_grid: Grid | None
    flips: list = field(default_factory=list)
    issues: list = field(default_factory=list)
    extra: dict | None = None  # extra pins that keep every cell that passed before green, when the target does not
    search: search.Outcome | None = None
    green: bool = False  # no regression: every selected cell that passed before passes on the target
    regressions: list = field(default_factory=list)  # columns that passed before and do not on the target
    both: list = field(default_factory=list)  # columns that did not pass before and do not now: not the upgrade's
    handoff: list = field(default_factory=list)  # handoff columns: saved by the current environment, loaded by each


def handoff_cells(matrix: Matrix, root: Path, current: handoff.SideSpec, target: dict, python: str,
                  cases: Sequence[str], log=print) -> tuple[list[Record], list[Record]]:
    """The selected handoff cases, saved by the current environment and loaded by itself (before) and by the
    target (after): an upgraded serving stack that cannot load what the current one saves is a regression."""
    chosen = [c for c, spec in matrix.cases.items() if spec.handoff and any(match(s, c) for s in cases)]
    if not chosen:
        return [], []
    producer = handoff.side_environment(root, current, chosen, python, None, None)
    pins = tuple(f"{p}=={v}" for p, v in target.items())
    consumer = handoff.side_environment(root, handoff.SideSpec("to", pins), chosen, python, None, None)
    log(f"upgrade: the handoff cases ({', '.join(chosen)}) from the current environment to itself and to the target")
    before = handoff.run_halves(matrix, root, producer, producer,
                                handoff.pair_combo(producer.combo, producer.combo, chosen), log)
    after = handoff.run_halves(matrix, root, producer, consumer,
                               handoff.pair_combo(producer.combo, consumer.combo, chosen), log)
    return before, after


def resolve_target(current: dict, to: Sequence[Keep], latest: bool, python: str) -> tuple[dict, tuple[str, ...]]:
    """The target's exact versions, moving as few other packages as possible; NotInstallable if none works."""
    others = [p for p in STACK if current.get(p) and p not in {k.name for k in to}]
    first: NotInstallable | None = None
    for size in range(0, len(others) + 1):
        for freed in itertools.combinations(others, size):
            reqs = upgradeplan.target_requirements(current, to, latest, freed)
            try:
                return search.compile_stack(reqs, python, "lowest-direct" if freed else "highest"), freed
            except NotInstallable as exc:
                first = first or exc
        if latest:
            break
    raise first or NotInstallable("the target cannot be resolved")


def run(matrix: Matrix, root: Path, before: Grid, to: Sequence[Keep], latest: bool, selectors: Sequence[str],
        max_envs: int = 4, log=print, current_env: handoff.SideSpec | None = None) -> Result:
    """Build and run the target (and, given the ``current`` environment itself, the handoff cases from it to
    the target); if a cell that passed before fails, search for extra pins that keep every one green."""
    combo = before.combos[0]
    current = {p: v for p, v in (combo.get("resolved") or {}).items() if p in STACK and v}
    python = combo.get("python") or "3.11"
    target, moved = resolve_target(current, to, latest, python)
    case_ids = tuple(dict.fromkeys(s.split("[", 1)[0] for s in selectors))
    tcombo = adhoc.adhoc_combo(target, python, case_ids)
    log(f"upgrade: running the target {tcombo.id}")
    grid = adhoc.run_adhoc(matrix, root, tcombo, root / adhoc.WORK / "adhoc" / tcombo.id / "grid.json", log=log)
    saved, loaded = handoff_cells(matrix, root, current_env, target, python, case_ids, log) if current_env else ([], [])
    was_cells = [*before.cells, *saved]
    mine = [c for c in [*grid.cells, *loaded] if any(match_column(s, c.column) for s in selectors)]
    columns = [c.column for c in mine]
    result = Result(current, target, moved, grid, upgradeplan.flips(was_cells, mine, selectors),
                    upgradeplan.walks_into(matrix.known_issues, current, target, columns),
                    handoff=[c.column for c in loaded])
    # A regression is a cell that passed before and does not now; one failing on both sides is listed
    # apart: no upgrade (and no extra pin) is asked to fix what was already broken.
    was = {c.column: c.status for c in was_cells}
    must = [c.column for c in mine if was.get(c.column) == Status.PASS]
    result.regressions = [c.column for c in mine if c.column in must and c.status != Status.PASS]
    result.both = [c.column for c in mine if c.column not in must and c.status != Status.PASS]
    result.green = bool(mine) and not result.regressions
    # Extra pins of one environment cannot make it load what another saved: a handoff regression is reported.
    if not result.green and not set(result.regressions) & set(result.handoff):
        keep = [*to, *(Keep(p, f"=={target[p]}") for p in ("torch",) if p in target and p not in {k.name for k in to})]
        result.search = search.run(matrix, root, must, keep, must, python=python, max_envs=max_envs, log=log)
        if result.search.found:
            found = next(a.versions for a in result.search.attempts if a.combo == result.search.found)
            extra = {p: v for p, v in found.items() if target.get(p) != v}
            result.extra = minimise(matrix, root, target, extra, must, case_ids, python, log)
    return result


def minimise(matrix: Matrix, root: Path, target: dict, extra: dict, selectors: Sequence[str], case_ids,
             python: str, log=print) -> dict:
    """Drop each extra pin whose package can stay at the target's version with every selected cell green.

    One package at a time, newest-first: the result is a set from which no single pin can be dropped
    (each candidate is resolved first, so an uninstallable one costs no environment).
    """

    kept = dict(extra)
    for package in [p for p in NEWNESS if p in extra]:
        trial = {**target, **{p: v for p, v in kept.items() if p != package}}
        try:
            versions = search.compile_stack([f"{p}=={v}" for p, v in trial.items()], python)
        except NotInstallable:
            continue
        combo = adhoc.adhoc_combo(versions, python, case_ids)
        log(f"upgrade: is the {package} pin needed? running {combo.id}")
        grid = adhoc.run_adhoc(matrix, root, combo, root / adhoc.WORK / "adhoc" / combo.id / "grid.json", log=log)
        mine = [c for c in grid.cells if any(match_column(s, c.column) for s in selectors)]
        if mine and all(c.status == Status.PASS for c in mine):
            kept.pop(package)
    return kept


def report(result: Result, to: Sequence[Keep], latest: bool) -> list[str]:
    """UPGRADE.md: the four answers (flips, known issues, extra pins, commands) and the evidence."""
    wanted = "the newest release of every package" if latest else " ".join(map(str, to))
    lines = ["# Upgrade check", "", f"From the current environment to {wanted}.", "",
             "| package | current | target |", "|---|---|---|"]
    lines += [f"| {p} | {result.current.get(p, '')} | {result.target.get(p, '')}"
              f"{' (moved: needed by the target)' if p in result.moved else ''} |" for p in STACK]
    lines += ["", "## Cells that flip", ""]
    lines += [f"- `{f.column}`: {f.before} → **{f.after}**" + (f": `{f.signature.splitlines()[0]}`"
                                                             if f.signature and f.after != "pass" else "")
              for f in result.flips] or ["None: every selected cell has the same status on the target."]
    if result.handoff:
        lines += ["", f"Handoff cells ({len(result.handoff)}): what the current environment saves, loaded by the "
                      "target; before, loaded by the current environment itself."]
    if result.both:
        lines += ["", "## Cells that fail on both sides", "",
                  "Not passing before the upgrade either: not counted against it, and no extra pin is sought for them.",
                  ""] + [f"- `{c}`" for c in result.both]
    lines += ["", "## Known issues the target walks into", ""]
    lines += [f"- `{i.id}`: {i.summary} ({i.url})" + (f". Workaround: {i.workaround}" if i.workaround else "")
              for i in result.issues] or ["None registered for the selected cases."]
    lines += ["", "## Extra pins that keep every selected cell green", ""]
    if result.green:
        lines += ["None needed: no regression, every selected cell that passed before passes on the target."]
        install = result.target
    elif result.extra is not None:
        lines += [f"- `{p}=={v}` (the target has {result.target.get(p)})" for p, v in result.extra.items()]
        lines += ["", "Found by `pins --search` with the target's pins kept, then minimised: every cell passed with "
                      "them, and dropping any one of them made a cell fail or the set uninstallable."]
        install = {**result.target, **result.extra}
    elif set(result.regressions) & set(result.handoff):
        lines += ["None sought: the target cannot load what the current environment saves (a handoff cell), which "
                  "no extra pin of one environment changes; see the known issues above."]
        install = None
    else:
        lines += [f"No set found: {result.search.gave_up if result.search else 'the target did not run'}."]
        install = None
    if result.search:
        lines += ["", *search.summary(result.search)]
    lines += ["", "## Commands", ""]
    if install:
        # Only what the environment has, or the upgrade asks for: never a package it never had.
        asked = {k.name for k in to}
        held = {p: v for p, v in install.items() if result.current.get(p) or p in asked}
        lines += ["```bash", *upgradeplan.install_commands(held), "```"]
    else:
        lines += ["No install keeps every selected cell green with these targets; see the known issues above."]
    return lines


@dataclass(frozen=True)
class Written:
    """An upgrade's answer as written: the result, the report's text and the files."""

    result: Result
    text: str
    files: tuple[Path, ...]


def current_grid(matrix: Matrix, root: Path, cases: Sequence[str], from_grid: str | None, python: str | None,
                 venv: str | None, out: Path) -> Grid:
    """The current environment's one-row grid: read (``--from``) or run now in ``--python``/``--venv``."""
    if from_grid:
        grid = gridload.load(from_grid)
        if len(grid.combos) != 1:
            raise InputError(f"--from {from_grid}: expected the one-row grid `ftcompat here` writes, "
                             f"found {len(grid.combos)} combos")
        return grid
    if not (python or venv):
        raise InputError("say which environment to upgrade: --python PATH, --venv DIR, or --from a grid "
                         "`ftcompat here` wrote")
    return here.flow(matrix, root, cases, out / "current.json", python, venv)[1]


def flow(matrix: Matrix, root: Path, before: Grid, to: Sequence[Keep], latest: bool, selectors: Sequence[str],
         max_envs: int, out: Path, ran_here: bool, current: handoff.SideSpec | None = None) -> Written:
    """``ftcompat upgrade``: the target run beside the current grid, the flips and fixes written to ``out``."""
    result = run(matrix, root, before, to, latest, selectors, max_envs, current_env=current)
    text = "\n".join(report(result, to, latest)) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "UPGRADE.md"]
    files[0].write_text(text, encoding="utf-8")
    if result.target_grid is not None:
        grid_mod.save(result.target_grid, out / "target.json")
        files.append(out / "target.json")
    if ran_here:
        grid_mod.save(before, out / "current.json")
        files.append(out / "current.json")
    return Written(result, text, tuple(files))
