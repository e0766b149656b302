"""The body of one combo's nox session: install the pins, run the harness, complete the cells."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ftcompat import install, plan
from ftcompat.cases import discover
from ftcompat.domain import Combo
from ftcompat.grid import complete, missing_record, read_cells
from ftcompat.harness.cellfile import atomic_write, dumps, write_cells
from ftcompat.matrix import load
from ftcompat.outcome import Status

CELLS = Path("results") / "cells"
WORK = Path(".ftcompat")


def workers() -> str:
    """Return the number of xdist workers: FTCOMPAT_WORKERS, else up to 2 (each case in a process)."""
    return os.environ.get("FTCOMPAT_WORKERS") or str(min(2, os.cpu_count() or 1))


def pytest_args(root: Path, plan_file: Path, out: Path, case_files: list[Path]) -> list[str]:
    """Return the harness command line run inside the pinned environment."""
    ini = plan_file.with_suffix(".ini")
    ini.write_text("[pytest]\naddopts =\n")
    return ["python", "-m", "pytest", "-p", "ftcompat.harness.plugin", "-p", "no:cacheprovider",
            "-c", str(ini), "--rootdir", str(root), "--ftcompat-plan", str(plan_file),
            "--ftcompat-out", str(out), "-n", workers(), "-q", "-rN", "--tb=line",
            "--disable-warnings", *map(str, case_files)]


def run_combo(session, combo_id: str, root: Path | None = None) -> None:
    """Build (or reuse) the combo's env, run its cases there and write results/cells/<combo>.json."""
    root = Path(root or Path.cwd()).resolve()
    matrix = load(root / "matrix.yaml")
    cases = discover(root / "cases")
    combo = matrix.combo(combo_id)
    out = root / CELLS / f"{combo.id}.json"
    planned = plan.planned_cells(matrix, combo, cases)
    venv = Path(session.virtualenv.location)
    result = install.install(venv, combo, root, log=session.log)
    if not result.ok:
        _not_installable(session, combo, planned, out, result.output)
        return
    session.log(result.output.strip().splitlines()[-1] if result.output.strip() else "installed")
    work = root / WORK / "work" / combo.id
    plan_file = root / WORK / "plans" / f"{combo.id}.json"
    harness_plan = plan.harness_plan(matrix, combo, out, work)
    atomic_write(plan_file, dumps(harness_plan))
    files = [cases[c].path for c in plan.combo_cases(matrix, combo)]
    out.unlink(missing_ok=True)
    # Exit codes 1 (some case failed) and 2-5 (interrupted, crashed) are results, not session errors:
    # whatever the harness wrote stays, and cells it never reached are filled in below.
    session.run(*pytest_args(root, plan_file, out, files), success_codes=list(range(0, 6)),
                env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
    records = complete(read_cells(out), planned, combo,
                       "no result recorded: the harness stopped before this cell (see the session log)")
    write_cells(out, combo.id, records)
    counts = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    session.log(f"{combo.id}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def _not_installable(session, combo: Combo, planned, out: Path, output: str) -> None:
    """Record every planned cell as not-installable with the installer's reason, then skip."""
    reason = install.failure_summary(output)
    tail = "\n".join(output.strip().splitlines()[-40:])
    records = [missing_record(c, combo, Status.NOT_INSTALLABLE, reason, tail) for c in planned]
    write_cells(out, combo.id, records)
    session.log(tail)
    session.skip(f"not-installable: {reason}")


def write_json(path: Path, data) -> None:
    """Write JSON the ftcompat way (sorted keys)."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
