"""Repair an environment ftcompat resolved itself whose health probe found a broken import.

Only packages ftcompat chose are changed, never a pinned one: the pins are the question asked, and
"the others at their newest compatible release" means compatible at import too, which no package
metadata promises (peft 0.21 installs beside transformers 4.39 and breaks ``transformers.trainer``;
pyarrow 26 beside numpy 1.26). Two methods:

* ``cap`` (the default): a package missing altogether (imported, never declared) is added; a package
  that raises is capped below its first release that fails beside the pins (``env.repair.newest_clean``),
  and the environment is prepared again with that requirement beside the pins;
* ``asof``: everything unpinned is resolved as of the day after the newest pinned release.

The repaired environment is probed again; what is still broken stays in the report, and its cells
say so. docs/findings/environment_health.md has the measurements behind the default.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.domain import Combo
from ftcompat.core.errors import NotInstallable
from ftcompat.core.health import Defect, EnvReport, Fix, Health, Repair, canonical
from ftcompat.env import health, repair, resolved
from ftcompat.env.base import Built, Environment, Log

ROUNDS = 3  # a repair can uncover the next broken import; more than this is not a repair any more


def fixable(defect: Defect, combo: Combo) -> str | None:
    """The package a repair may change for this defect (one the pins leave to ftcompat), else None."""
    chosen_by_user = {canonical(p) for p, v in combo.pins.items() if v}
    for dist in (defect.missing, defect.raised_by):
        if dist and canonical(dist) not in chosen_by_user:
            return canonical(dist)
    return None


def _fix(defect: Defect, package: str, built: Built, log: Log) -> tuple[Fix | None, int, str]:
    """One fix for one root cause: add a missing package, or cap an installed one; with the probes it cost."""
    installed = defect.versions.get(package)
    if installed is None:
        return Fix(package, package, defect.summary()), 0, ""
    found = repair.newest_clean(built, package, installed, defect.module, log=log, root=defect.root)
    if found.kept is None:
        return None, found.steps, f"no release of {package} older than {installed} imports {defect.module}"
    return Fix(f"{package}<{found.first_bad}", package, defect.summary(), found.first_bad, found.kept), found.steps, ""


@dataclass
class _Tally:
    """What a repair has done so far."""

    fixes: list[Fix] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    steps: int = 0


def _next(method: str, combo: Combo, found: Health, built: Built, tally: _Tally, log: Log) -> Combo | None:
    """The combo one round of ``method`` turns this one into, or None when it has nothing left to change."""
    if method == "asof":
        day = repair.pins_date(combo.pins)
        if day is None:
            tally.notes.append("the index gives no release date for the pins")
            return None
        tally.fixes.append(Fix(f"--exclude-newer {day}", "*", "; ".join(d.summary() for d in found.roots())))
        return dataclasses.replace(combo, exclude_newer=day)
    added: list[str] = []
    for defect in found.roots():
        package = fixable(defect, combo)
        if package is None:
            tally.notes.append(f"{defect.summary()}: every package involved is pinned")
            continue
        fix, cost, note = _fix(defect, package, built, log)
        tally.steps += cost
        if fix is None:
            tally.notes.append(note)
        elif fix.requirement not in combo.extra + tuple(added):
            added.append(fix.requirement)
            tally.fixes.append(fix)
    return dataclasses.replace(combo, extra=combo.extra + tuple(added)) if added else None


def repair_env(environment: Environment, built: Built, broken: Health, method: str, root: Path,
               modules: Iterable[str], log: Log = print) -> tuple[Environment, Built, EnvReport]:
    """Repair a broken environment by ``method``, prepare it again and probe it; return all three.

    A repair the resolver refuses (a cap no release beside the pins meets) is a note, not a verdict:
    the environment goes back to the last combo that installed, and its cells say what is broken.
    """
    started, tally, found = time.monotonic(), _Tally(), broken
    for _ in range(ROUNDS if method == "cap" else 1):
        kept = len(tally.fixes)
        combo = None if found.ok else _next(method, environment.combo, found, built, tally, log)
        if combo is None:
            break
        log(f"repair: preparing {combo.id} again with " + (", ".join(combo.extra) or f"--exclude-newer "
                                                            f"{combo.exclude_newer}"))
        candidate = environment.with_combo(combo)
        try:
            built = candidate.prepare(log)
        except NotInstallable as exc:
            refused = ", ".join(f.requirement for f in tally.fixes[kept:])
            tally.notes.append(f"{refused} cannot be installed beside the pins: {exc.message}")
            del tally.fixes[kept:]
            built = environment.prepare(log)
            break
        environment = candidate
        found = health.check(root, built, modules, log)
    held = resolved.resolved(Path(built.python).parent.parent,
                             tuple(f.package for f in tally.fixes if f.package != "*"))
    fixes = tuple(dataclasses.replace(f, kept=held.get(f.package) or f.kept) for f in tally.fixes)
    done = Repair(method, fixes, broken.roots(), found.ok, tally.steps, time.monotonic() - started,
                  "; ".join(tally.notes))
    for line in EnvReport(found, done).lines():
        log(line)
    return environment, built, EnvReport(found, done)
