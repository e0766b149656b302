"""``ftcompat doctor``: the health probe on an environment someone else owns, with the smallest change that fixes it.

The probe imports every top-level module the environment's distributions install (the stack's first)
with ftcompat's harness reached through ``PYTHONPATH`` and no bytecode written: nothing inside the
environment changes. Each root cause gets the smallest change that could cure it: add a package an
import needs but nobody declared, or take the raising package below the installed release.
``--verify`` checks that in a copy (``uv pip freeze`` of the environment, synced into a scratch venv
from uv's cache): a raising package's releases are walked down with the probe (``env.repair``) to the
newest that imports, and the copy with every change is probed again. The copy is removed after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ftcompat.core.errors import MachineError
from ftcompat.core.health import Defect, Health
from ftcompat.env import build, installer, overlay, repair, target
from ftcompat.env.base import Built
from ftcompat.env.health import probe
from ftcompat.env.venv import make_venv
from ftcompat.runner.cells import WORK

HOME = WORK / "doctor"


@dataclass(frozen=True)
class Advice:
    """One root cause and the change that cures it; ``verified`` once a copy with the change was probed."""

    defect: Defect
    modules: tuple[str, ...]  # every module that fails on this root cause
    package: str | None  # what to change
    change: str | None  # ``pyarrow<26.0.1``; None: nothing ftcompat can suggest
    verified: bool | None = None  # None: not checked (no --verify)
    kept: str | None = None  # the version the change leads to, where the copy showed it


@dataclass(frozen=True)
class Diagnosis:
    """What the doctor found in one environment."""

    python: str
    health: Health
    advice: tuple[Advice, ...]
    fixed: bool | None = None  # --verify: the copy with every change imports everything

    @property
    def ok(self) -> bool:
        """True when every module imported."""
        return self.health.ok


def smallest_change(defect: Defect) -> tuple[str | None, str | None]:
    """The package to change and how: add an undeclared one, else go below the raising one's installed release."""
    if defect.missing and defect.versions.get(defect.missing) is None:
        return defect.missing, defect.missing
    for dist in (defect.raised_by, defect.missing):
        if dist and defect.versions.get(dist):
            return dist, f"{dist}<{defect.versions[dist]}"
    return None, None


def advise(found: Health) -> tuple[Advice, ...]:
    """One piece of advice per root cause, naming every module that fails on it."""
    out = []
    for root in found.roots():
        modules = tuple(d.module for d in found.defects if d.root == root.root)
        package, change = smallest_change(root)
        out.append(Advice(root, modules, package, change))
    return tuple(out)


def _environ() -> dict[str, str]:
    """Ours, without what would make the target import something other than its own packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _outside(root: Path, python: str) -> Built:
    """An interpreter reached from outside: the harness on its path only, no bytecode written into it."""
    return Built(python=python, env={"PYTHONPATH": str(overlay.harness_dir(root)), "PYTHONDONTWRITEBYTECODE": "1"})


def diagnose(root: Path, interpreter: Path) -> Diagnosis:
    """Probe the environment of ``interpreter`` without changing it."""
    found = probe(_outside(root, str(interpreter)), every=True, environ=_environ())
    return Diagnosis(str(interpreter), found, advise(found))


def verify(root: Path, diagnosis: Diagnosis, keep: bool = False, log: Callable[[str], None] = print) -> Diagnosis:
    """Check each change in a copy of the environment; find the newest release that imports where one is capped."""
    uv = installer.find_uv()
    if not uv:
        raise MachineError("ftcompat doctor --verify needs uv to copy the environment; pip install uv")
    environ = _environ()
    freeze = installer.run([uv, "pip", "freeze", "--python", diagnosis.python], environ, log).stdout
    lock = tuple(line.strip() for line in freeze.splitlines() if "==" in line and not line.startswith("-"))
    copy = Path(root) / HOME / hashlib.sha256(diagnosis.python.encode()).hexdigest()[:12]
    shutil.rmtree(copy, ignore_errors=True)
    try:
        make_venv(copy, diagnosis.python)
        log(f"doctor: copying the environment ({len(lock)} distributions) into {copy.name} from uv's cache")
        build.sync(copy, lock, environ, uv, log)
        built = _outside(root, str(copy / "bin" / "python"))
        advice = [_check(built, a, environ, log) for a in diagnosis.advice]
        after = probe(built, every=True, environ=environ)
        return replace(diagnosis, advice=tuple(advice), fixed=after.ok)
    finally:
        if not keep:
            shutil.rmtree(copy, ignore_errors=True)


def _check(built: Built, advice: Advice, environ: dict[str, str], log) -> Advice:
    """Apply one change in the copy: add the missing package, or walk the raising one's releases down."""
    if advice.package is None:
        return advice
    venv = Path(built.python).parent.parent
    installed = advice.defect.versions.get(advice.package)
    if installed is None:
        ok = repair.install_one(venv, advice.package, environ, log)
        after = probe(built, advice.modules, only=True, environ=environ)
        return replace(advice, verified=ok and repair.cured(after, advice.package, advice.defect.root))
    found = repair.newest_clean(built, advice.package, installed, advice.modules[0], environ, log,
                                root=advice.defect.root)
    if found.kept is None:
        return replace(advice, verified=False)
    repair.install_one(venv, f"{advice.package}=={found.kept}", environ, log)
    ok = repair.cured(probe(built, advice.modules, only=True, environ=environ), advice.package, advice.defect.root)
    return replace(advice, change=f"{advice.package}<{found.first_bad}", verified=ok, kept=found.kept)


def flow(root: Path, python: str | None = None, venv: str | None = None, check: bool = False, keep: bool = False,
         log: Callable[[str], None] = print) -> Diagnosis:
    """``ftcompat doctor``: probe the environment (this interpreter's, or --python/--venv), and --verify the fixes."""
    interpreter = target.interpreter(python, venv) if (python or venv) else Path(sys.executable)
    found = diagnose(root, interpreter)
    return verify(root, found, keep, log) if check and not found.ok else found


def report(d: Diagnosis) -> list[str]:
    """What the terminal shows: each failing import with its root cause, and the change that fixes it."""
    h = d.health
    if h.error:
        return [f"{d.python}: the health probe could not run: {h.error}"]
    failing = sorted({x.module for x in h.defects})
    lines = [f"{d.python}: {len(h.probed)} modules imported one after another; "
             + (f"{len(failing)} fail on {len(d.advice)} root cause{'s' * (len(d.advice) != 1)}" if failing
                else "every one imports")]
    for a in d.advice:
        versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in sorted(a.defect.versions.items()))
        lines.append(f"  {a.defect.root}")
        lines.append(f"    fails: import {', '.join(a.modules)}")
        lines.append(f"    raised by: {a.defect.raised_by or 'unknown'}"
                     + (f"; involves {versions}" if versions else ""))
        if a.change is None:
            lines.append("    fix: none ftcompat can suggest")
            continue
        how = f'pip install "{a.change}"'
        state = {None: "not checked (--verify builds a copy with it)", True: "verified in a copy of this environment",
                 False: "did not fix it in a copy of this environment"}[a.verified]
        kept = f"; it installs {a.package} {a.kept}" if a.kept else ""
        lines.append(f"    fix: {how} ({state}{kept})")
    if d.fixed is not None:
        lines.append("with every fix, the copy imports every module" if d.fixed else
                     "with every fix, the copy still fails to import something: run doctor on it again (--keep)")
    return lines
